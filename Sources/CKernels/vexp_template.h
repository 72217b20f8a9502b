/*
 * Vector exp shared by the float kernel families' ISA templates. Included inside a template pass
 * that defines W, VF (float vector), VI (int vector), FMA(a, b, c) and SFX(name) (the ISA suffix);
 * once per pass, so there is no include guard.
 */

/* e^r - 1 for xc = n ln2 + r (|r| <= ln2/2), and ni = n: the reduction and polynomial every exp
   here shares; xc must already be clamped to where 2^n is representable. */
static inline __attribute__((always_inline)) VF SFX(v_exp_reduced)(VF xc, VI *ni) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low bits */
    VF t = FMA(xc, (VF)1.44269504088896341f, (VF)magic);
    VF n = t - magic;
    *ni = (VI)t - 0x4B400000;
    VF r = FMA(n, (VF)-0.693359375f, xc);
    r = FMA(n, (VF)2.12194440e-4f, r);
    VF p = (VF)1.9875691500e-4f;
    p = FMA(p, r, (VF)1.3981999507e-3f);
    p = FMA(p, r, (VF)8.3334519073e-3f);
    p = FMA(p, r, (VF)4.1665795894e-2f);
    p = FMA(p, r, (VF)1.6666665459e-1f);
    p = FMA(p, r, (VF)5.0000001201e-1f);
    return FMA(p, r * r, r);
}

/* e^x for x <= 0 (softmax's x_i - max, GELU's erfc exponent): the shared reduction and polynomial,
   but one scale factor 2^n (n >= -126 for x >= -87.33, a normal float) and no overflow side (the
   unary family's u_exp has both); below -87.33 the result is 0 rather than a subnormal below
   1.2e-38, which no row sum or quotient of it can tell from 0. NaN stays NaN (the comparisons are
   false for it). */
static inline __attribute__((always_inline)) VF SFX(v_exp_nonpos)(VF x) {
    const VF lo = (VF)-87.3365f;
    VF xc = x < lo ? lo : x;
    VI ni;
    VF p = SFX(v_exp_reduced)(xc, &ni) + 1.0f;
    VF y = p * (VF)((ni + 127) << 23);
    return x < lo ? (VF)0.0f : y;
}
