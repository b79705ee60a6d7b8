/// A 2048-bit RSA key pair made with `openssl genrsa 2048`, for RS256 tests only.
enum TestKeys {
    static let rsaPrivatePEM = """
        -----BEGIN PRIVATE KEY-----
        MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCt+Jd9qI3V5trX
        yXqV5fRj4e8AjQ2gJbcMQX5hd3cYk1zONkQoeLhaodqs8rfkoqYWTSukauyHT+HV
        K31FxRCZMPtA5xFVTgoC9Fq3YFGpp6e/bt7/2ZSmS5CLitWc7fErkeqZEN2T1nVH
        2DOP8I0N/8b+QAxWT/7KpzJzpFusOEFh+FgNWHAPY0WzECrHa+63LkHJ4mLzSIkB
        lxwpZL54cBdaiYecTNoexo5Vsa7IJQ2h1/v2SeqAEwusH44U0I9sBgOqOXDUMehn
        IZTKXhukJO/+u3VThJXqrG6tBEPLDipmpEjBEd7BuVKh39z4c3FMxuCTSOuF11lL
        d7YFt9u/AgMBAAECggEAIYlF3r3S1bSiZC2dOW8yPNztXzxRr5kFn9GyRKSsayrh
        HYldezXGSAZiaquBYowuGyd2LcRE41K1VIwFIqF58SX9kUXZ1AluqaIkKKxjIaLF
        lgQP7d8qJiJz80pook9GCeGfiTE0nY6eXiKh0fILpvKzEAkVt7/E/Jjdg2hgGaMP
        LjOAiigLPhYZgVHDkwDBCFMUhJvVS3imtMSyaPcP91amxNl/iCA2pfqHET8O1XvR
        0MDZu9xBE0uYkw3J42swXSYwuu3mwQlqnpcCo53crcDTCdWJIH75M52zvLvDZA9S
        oDKWbJoxkv5BTBhhWBkIAQUvIKgMjp00UCd+sYCe+QKBgQDT4zUzi0up4N04GhZk
        bIlKVvYOULz0kQ6+AwOYgu+E+uCWNDy+kctsueNPcbs717zGhBwotj8l6xaTbI7c
        O/nNvhEs6L3H70hBD+f40BkXWNqu0uNyZIsWvzwUsOwraYpX3CpJuqFR+GXn8jCZ
        itcsyZ/5JB6OxdkxVFuGptKAdwKBgQDSMJToBzNBueZYBGhiwQwztW+N4rEuUwd2
        +R398qOwu8mjd0m/iO9sMdR7kwmbSHWqfL8MIDK1bxb/VRuxpnt5OGA303l1GgpV
        7oANDlSdHqY5nq+oRgj5YKcq34rvxCIrH24JyAFRzjPkDtvs8ZHE3vZj2IMkk3VR
        TkxN07BY+QKBgQC/dSRTaOB7pdX+pYPqRjBf3egD02yJyLD7fJm5K0bmcBKTZqwk
        vnSD0AvXczrtveizsBgJqXOx/ZSurX8A/aihAcdfPwaNLGercoX3S4IAmKcxJRmj
        +bm8Whwdzif4qir5bNVBPcQa30qlpS/I7a20qJNGeh6qf5fbfRAewYqfzQKBgQCb
        B34tDXJ+3fDJpqafgCfR09bt3fA1bMQqul+muNqHNlrpGMjqXsPJF4/TfYYuZGl1
        UAFRnkYIkGFz/oAordSQekZtpqsE9in9a6ZC+vjp0ntkMGj7QnzIAsQJ2UuOwSk6
        iToOONjQT7jyUwtfXmXXwWQWDNHdnm1/hLK/DI4bcQKBgHb4Z+tB5JVRJMUH7NyY
        JQwejMMfzO25iJJNkXw/SBbuB/lUWxBcM4qoGISNHaS3bqWFbLBrwjd7eCyVuenp
        JVUWgGu/Mq5R2FkZTwlGN4trlq+4dt28aVyFOJi9+AR3MVh3tjtUywEQo8DCAv5f
        HtGw4M4Kq4QhX/PwUjOrwxNi
        -----END PRIVATE KEY-----
        """

    static let rsaPublicPEM = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArfiXfaiN1eba18l6leX0
        Y+HvAI0NoCW3DEF+YXd3GJNczjZEKHi4WqHarPK35KKmFk0rpGrsh0/h1St9RcUQ
        mTD7QOcRVU4KAvRat2BRqaenv27e/9mUpkuQi4rVnO3xK5HqmRDdk9Z1R9gzj/CN
        Df/G/kAMVk/+yqcyc6RbrDhBYfhYDVhwD2NFsxAqx2vuty5ByeJi80iJAZccKWS+
        eHAXWomHnEzaHsaOVbGuyCUNodf79knqgBMLrB+OFNCPbAYDqjlw1DHoZyGUyl4b
        pCTv/rt1U4SV6qxurQRDyw4qZqRIwRHewblSod/c+HNxTMbgk0jrhddZS3e2Bbfb
        vwIDAQAB
        -----END PUBLIC KEY-----
        """

    /// An Ed25519 key pair (`openssl genpkey -algorithm ed25519`), for EdDSA.
    static let ed25519PrivatePEM = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIKbDmxpHyDFq0+VqZnVwBkhV+jDgbzxUCrLBOJ+24TVT
        -----END PRIVATE KEY-----
        """
    static let ed25519PublicPEM = """
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEAfvucXHK4jI69p/4HarY6EI7eXoJsuwzXugN9VPMVn0M=
        -----END PUBLIC KEY-----
        """
    /// Its public key as a JWK `x` (the 32 raw bytes, base64url).
    static let ed25519X = "fvucXHK4jI69p_4HarY6EI7eXoJsuwzXugN9VPMVn0M"
}
