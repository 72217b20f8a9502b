import Foundation

/// sRGB <-> CIE Lab (D65), as the colorization model contract defines it:
/// sRGB -> linear -> XYZ (D65) -> Lab, and back.
enum LabColor {
    @inline(__always) static func srgbToLinear(_ c: Float) -> Float {
        c <= 0.04045 ? c / 12.92 : powf((c + 0.055) / 1.055, 2.4)
    }

    @inline(__always) static func linearToSRGB(_ c: Float) -> Float {
        let v = min(max(c, 0), 1)
        return v <= 0.0031308 ? 12.92 * v : 1.055 * powf(v, 1 / 2.4) - 0.055
    }

    @inline(__always) static func f(_ t: Float) -> Float {
        t > 0.008856451679 ? cbrtf(t) : t * 7.787037037 + 4.0 / 29.0
    }

    @inline(__always) static func finv(_ t: Float) -> Float {
        t > 6.0 / 29.0 ? t * t * t : 0.12841854934 * (t - 4.0 / 29.0)
    }

    /// Lab L (0...100) of an sRGB color in [0, 1].
    @inline(__always) static func lightness(r: Float, g: Float, b: Float) -> Float {
        let y = 0.2126729 * srgbToLinear(r) + 0.7151522 * srgbToLinear(g) + 0.0721750 * srgbToLinear(b)
        return 116 * f(y) - 16
    }

    /// sRGB in [0, 1] (clamped) of a Lab color.
    @inline(__always) static func labToSRGB(l: Float, a: Float, b: Float) -> (Float, Float, Float) {
        let fy = (l + 16) / 116
        let x = 0.95047 * finv(fy + a / 500), y = finv(fy), z = 1.08883 * finv(fy - b / 200)
        let r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
        let g = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
        let bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
        return (linearToSRGB(r), linearToSRGB(g), linearToSRGB(bl))
    }
}
