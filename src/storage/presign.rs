//! Presigned S3 PUTs that pin what may be sent: the `Content-Length` (and, when the client
//! declared one, the SHA-256 of the bytes) is among the headers the signature covers, so
//! S3 refuses any other body ("SignatureDoesNotMatch", or a checksum mismatch). The
//! object_store signer signs `host` alone and reserves `content-length`, so this is
//! AWS Signature Version 4 in query-string form, done here.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>

use hmac::{Hmac, KeyInit, Mac};
use object_store::signer::Url;
use sha2::{Digest, Sha256};

/// The credentials that sign, as object_store found them (keys, or an instance role's).
pub(super) struct Credential<'a> {
    pub key_id: &'a str,
    pub secret_key: &'a str,
    pub token: Option<&'a str>,
}

/// What a PUT must carry to match the signature.
pub(super) struct Pinned<'a> {
    pub content_length: u64,
    /// Base64 of the SHA-256 of the bytes (`x-amz-checksum-sha256`), when declared.
    pub checksum_sha256: Option<&'a str>,
}

/// Signs `url` (an S3 object URL without a query) for a PUT at `date` valid `expires`
/// seconds, with `pinned` among the signed headers.
pub(super) fn sign_put(
    url: &mut Url,
    credential: &Credential<'_>,
    region: &str,
    date: chrono::DateTime<chrono::Utc>,
    expires: u64,
    pinned: &Pinned<'_>,
) {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut headers = vec![
        ("content-length", pinned.content_length.to_string()),
        ("host", host),
    ];
    if let Some(sum) = pinned.checksum_sha256 {
        headers.push(("x-amz-checksum-sha256", sum.to_string()));
    }
    sign(url, "PUT", credential, region, date, expires, &headers);
}

/// SigV4 in query-string form: the request `method` on `url`, with `headers` (lower-case
/// names, `host` among them) signed and the payload unsigned.
fn sign(
    url: &mut Url,
    method: &str,
    credential: &Credential<'_>,
    region: &str,
    date: chrono::DateTime<chrono::Utc>,
    expires: u64,
    headers: &[(&str, String)],
) {
    let day = date.format("%Y%m%d").to_string();
    let stamp = date.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{day}/{region}/s3/aws4_request");
    let mut headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.trim())).collect();
    headers.sort();
    let signed_headers: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let signed_headers = signed_headers.join(";");
    let mut query = vec![
        (
            "X-Amz-Algorithm".to_string(),
            "AWS4-HMAC-SHA256".to_string(),
        ),
        (
            "X-Amz-Credential".to_string(),
            format!("{}/{scope}", credential.key_id),
        ),
        ("X-Amz-Date".to_string(), stamp.clone()),
        ("X-Amz-Expires".to_string(), expires.to_string()),
        ("X-Amz-SignedHeaders".to_string(), signed_headers.clone()),
    ];
    if let Some(token) = credential.token {
        query.push(("X-Amz-Security-Token".to_string(), token.to_string()));
    }
    let mut encoded: Vec<(String, String)> =
        query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let canonical_query: Vec<String> = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canonical_query = canonical_query.join("&");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical_request = format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
        url.path()
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = format!("AWS4{}", credential.secret_key).into_bytes();
    for part in [day.as_str(), region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    url.set_query(Some(&format!(
        "{canonical_query}&X-Amz-Signature={signature}"
    )));
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes as SigV4 wants: every byte but `A-Z a-z 0-9 - _ . ~`, as `%XY`.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential() -> Credential<'static> {
        Credential {
            key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            token: None,
        }
    }

    fn date() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// The example of Amazon's documentation of presigned URLs (a GET of `test.txt`, host
    /// alone signed): the same algorithm signs the PUTs, with more headers.
    #[test]
    fn signs_the_documented_example() {
        let mut url = Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let host = ("host", "examplebucket.s3.amazonaws.com".to_string());
        sign(
            &mut url,
            "GET",
            &credential(),
            "us-east-1",
            date(),
            86400,
            &[host],
        );
        assert!(
            url.as_str().ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    #[test]
    fn a_put_pins_its_length_and_checksum() {
        let mut url = Url::parse("http://127.0.0.1:9000/bucket/media/a%20b.srt").unwrap();
        let pinned = Pinned {
            content_length: 54,
            checksum_sha256: Some("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="),
        };
        sign_put(&mut url, &credential(), "us-east-1", date(), 900, &pinned);
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let signed = query
            .iter()
            .find(|(k, _)| k == "X-Amz-SignedHeaders")
            .unwrap();
        assert_eq!(signed.1, "content-length;host;x-amz-checksum-sha256");
        let mut other = Url::parse("http://127.0.0.1:9000/bucket/media/a%20b.srt").unwrap();
        let longer = Pinned {
            content_length: 55,
            ..pinned
        };
        sign_put(&mut other, &credential(), "us-east-1", date(), 900, &longer);
        assert_ne!(url, other, "the length is in the signature");
    }
}
