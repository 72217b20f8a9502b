import XCTest
@testable import SwiftONNX
final class SmokeTests: XCTestCase { func testNothing() {} }
