//! The Standard Webhooks signature (<https://www.standardwebhooks.com>), both ways: the API
//! verifies Polar's deliveries with it, the workers sign Octavia's own.
//!
//! A delivery carries `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">` entries, several while a secret is being rotated. A secret
//! is written `whsec_<base64 of the key>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::Sha256;

/// What a secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh signing key: 32 random bytes.
pub fn new_key() -> Vec<u8> {
    // ThreadRng is a CSPRNG seeded from the operating system.
    let bytes: [u8; 32] = rand::rng().random();
    bytes.to_vec()
}

/// `key` as a secret is shown: `whsec_<base64>`.
pub fn encode_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key of a `whsec_<base64>` secret; `None` when it is not one.
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header of a delivery signed with each of `keys` (the current
/// key first, then one still valid during a rotation).
pub fn sign(keys: &[&[u8]], id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    keys.iter()
        .map(|key| {
            let tag = mac(key, id, &timestamp, body).finalize().into_bytes();
            format!("v1,{}", STANDARD.encode(tag))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` entry of the `signatures` header is `key`'s signature of the
/// delivery. The comparison is constant-time.
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let mac = mac(key, id, timestamp, body);
    signatures.split(' ').any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|sig| STANDARD.decode(sig).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's test suite.
    #[test]
    fn signs_the_specification_example() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let signature = sign(&[&key], id, 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&key, id, "1614265330", body, &signature));
        let other = new_key();
        let both = sign(&[&other, &key], id, 1614265330, body);
        assert!(verify(&key, id, "1614265330", body, &both));
        assert!(verify(&other, id, "1614265330", body, &both));
        assert!(!verify(&key, id, "1614265331", body, &signature));
        assert!(!verify(&key, "msg_other", "1614265330", body, &signature));
        assert!(!verify(&key, id, "1614265330", b"{}", &signature));
    }

    #[test]
    fn secrets_round_trip() {
        let key = new_key();
        assert_eq!(key.len(), 32);
        assert_ne!(key, new_key());
        let secret = encode_secret(&key);
        assert!(secret.starts_with("whsec_"));
        assert_eq!(decode_secret(&secret).unwrap(), key);
        assert_eq!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
        assert_eq!(decode_secret("whsec_not base64!"), None);
    }
}
