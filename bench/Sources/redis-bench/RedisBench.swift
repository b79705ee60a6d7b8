@main
struct RedisBench { static func main() {} }
