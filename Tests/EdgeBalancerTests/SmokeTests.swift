import Testing

@testable import EdgeBalancer

@Test func placeholder() {}
