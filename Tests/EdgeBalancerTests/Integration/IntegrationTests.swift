import Testing

/// Every test that runs balancers, backends and Redis on loopback. They run one at a time: they measure
/// shares and latencies, and on a small machine concurrent load tests would mostly measure each other.
@Suite(.serialized, .timeLimit(.minutes(1))) struct IntegrationTests {}
