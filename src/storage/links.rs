//! The local store's links: URLs to the API's own route that carry an expiry and an
//! HMAC-SHA256 over method, key and expiry, since a directory cannot presign.

use super::keys::{LOCAL_ROUTE, parse_key};
use crate::error::{Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use object_store::signer::Method;
use object_store::signer::Url;
use sha2::Sha256;
use std::sync::Arc;

/// Why a local-store link was refused. The API answers all of them with 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the link has expired")]
    Expired,
    /// The signature does not match the method, key and expiry: the link was altered, or
    /// signed with another secret.
    #[error("the link's signature is not valid")]
    Invalid,
    #[error("storage.signing_secret is empty, so no link can be verified")]
    NoSecret,
    #[error("the store is not local: its links are S3 presigned URLs, checked by S3")]
    NotLocal,
}

/// What signs and checks the local store's links.
#[derive(Clone)]
pub(super) struct LocalLinks {
    pub(super) secret: Arc<[u8]>,
    /// `api.public_url`, when `Storage::with_public_url` gave it.
    pub(super) base: Option<Url>,
}

impl std::fmt::Debug for LocalLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLinks")
            .field("secret", &if self.secret.is_empty() { "" } else { "***" })
            .field("base", &self.base.as_ref().map(Url::as_str))
            .finish()
    }
}

impl LocalLinks {
    fn mac(&self, method: &Method, key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        // Newlines separate the fields: no method, valid key or number contains one, so
        // two different links never sign the same message. The label keeps these MACs
        // from being valid for any other use of the same secret.
        for part in [
            "octavia-storage-link-v1",
            method.as_str(),
            key,
            &expires.to_string(),
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    pub(super) fn sign(&self, method: &Method, key: &str, expires: u64) -> Result<String> {
        if self.secret.is_empty() {
            return Err(Error::Invalid(
                "storage.signing_secret is empty: the local store's download and upload links \
                 are signed with it; set it (OCTAVIA_STORAGE_SIGNING_SECRET) to at least 32 \
                 random characters"
                    .into(),
            ));
        }
        let Some(base) = &self.base else {
            return Err(Error::Invalid(
                "the local store's links need api.public_url: open the store with \
                 Storage::from_config(..)?.with_public_url(&config.api.public_url)"
                    .into(),
            ));
        };
        let sig = hex::encode(self.mac(method, key, expires).finalize().into_bytes());
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("with_public_url refused URLs that cannot be a base")
            .pop_if_empty()
            .extend(LOCAL_ROUTE.split('/').filter(|s| !s.is_empty()))
            .extend(key.split('/'));
        url.query_pairs_mut()
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig);
        Ok(url.to_string())
    }

    pub(super) fn verify(
        &self,
        method: &Method,
        key: &str,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), SignatureError> {
        if self.secret.is_empty() {
            return Err(SignatureError::NoSecret);
        }
        // A key that could not have been signed (say `a/../b`) is refused before its MAC
        // is computed, so one object never has two spellings.
        if parse_key(key).is_err() {
            return Err(SignatureError::Invalid);
        }
        let sig = hex::decode(sig).map_err(|_| SignatureError::Invalid)?;
        self.mac(method, key, expires)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        // Checked after the signature, so an attacker learns nothing from which error
        // an altered link gets.
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signed message is a contract with every link already handed out: changing it
    /// breaks them all at the next deploy. The expected value comes from
    /// `printf 'octavia-storage-link-v1\nGET\nmedia/a/b/c.srt\n1700000000\n'
    ///  | openssl dgst -sha256 -hmac test-secret-test-secret-test-secret`.
    #[test]
    fn signature_matches_an_independent_hmac() {
        let links = LocalLinks {
            secret: b"test-secret-test-secret-test-secret".as_slice().into(),
            base: Some(Url::parse("http://api.test").unwrap()),
        };
        let url = links
            .sign(&Method::GET, "media/a/b/c.srt", 1_700_000_000)
            .unwrap();
        assert_eq!(
            url,
            "http://api.test/api/storage/media/a/b/c.srt?expires=1700000000\
             &sig=00ea2c1bf3ff311c6433226ed907829d64ecb3b66d82aab206b68bbecc2ed264"
        );
    }
}
