//! TLS to PostgreSQL, with libpq's connection parameters and their meaning:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | when the server offers it | no |
//! | `require` | always | no (as `verify-ca` when `sslrootcert` is given) |
//! | `verify-ca` | always | signed by a root of `sslrootcert` |
//! | `verify-full` | always | signed by a root, and issued for the host connected to |
//!
//! `sslrootcert` is a PEM file, or `system` for the platform's roots (without it, libpq's
//! `~/.postgresql/root.crt` when it exists); `sslcert` and `sslkey` are a client
//! certificate and its key (PEM). tokio-postgres knows only the first three modes and none
//! of the files, so these parameters are taken out of the URL here and the rest is its.

use crate::error::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // libpq's `allow` tries plain first: Octavia never prefers plain over TLS.
            "allow" => SslMode::Prefer,
            other => {
                return Err(Error::Invalid(format!(
                    "sslmode `{other}` is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                )));
            }
        })
    }
}

/// The TLS parameters of a connection URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsParams {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

/// A parsed connection: tokio-postgres' configuration and the TLS connector for it.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// Parses `url` (a `postgres://` URL or libpq's `key=value` form): the TLS parameters are
/// taken out and turned into the connector; the rest is tokio-postgres'.
pub fn target(url: &str) -> Result<Target> {
    let (rest, params) = split(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| Error::Invalid(format!("database URL: {e}")))?;
    let mode = match &params.sslmode {
        Some(m) => SslMode::parse(m)?,
        None => SslMode::Prefer,
    };
    let roots = match params.sslrootcert.as_deref() {
        Some(path) => Some(roots(path)?),
        None => match default_file("root.crt") {
            Some(path) if mode != SslMode::Disable => Some(roots(&path.display().to_string())?),
            _ => None,
        },
    };
    let mode = match (mode, &roots) {
        // libpq: with a root certificate, `require` checks the chain as `verify-ca` does.
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(Error::Invalid(format!(
                "sslmode={} checks the server's certificate and needs sslrootcert: a PEM \
                 file of the CA, or `system` for the platform's roots",
                params.sslmode.as_deref().unwrap_or_default()
            )));
        }
        (mode, _) => mode,
    };
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| Error::Invalid(format!("sslrootcert: {e}")))?
        }
        (SslMode::VerifyCa, Some(roots)) => Arc::new(ChainOnly(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| Error::Invalid(format!("sslrootcert: {e}")))?,
        )),
        _ => Arc::new(Unchecked(provider.clone())),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Invalid(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cert = params.sslcert.clone().or_else(|| {
        default_file("postgresql.crt")
            .filter(|_| mode != SslMode::Disable)
            .map(|p| p.display().to_string())
    });
    let client = match (cert, params.sslkey.as_deref()) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), key) => {
            let key = match key {
                Some(k) => k.to_string(),
                None => default_file("postgresql.key")
                    .map(|p| p.display().to_string())
                    .ok_or_else(|| Error::Invalid("sslcert is given without sslkey".into()))?,
            };
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
                .and_then(|certs| certs.collect())
                .map_err(|e| Error::Invalid(format!("sslcert `{cert}`: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| Error::Invalid(format!("sslkey `{key}`: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Invalid(format!("sslcert and sslkey: {e}")))?
        }
        (None, Some(_)) => return Err(Error::Invalid("sslkey is given without sslcert".into())),
    };
    Ok(Target {
        config,
        tls: MakeRustlsConnect::new(client),
    })
}

/// `~/.postgresql/{file}`, as libpq looks for it, when it exists.
fn default_file(file: &str) -> Option<PathBuf> {
    let path = Path::new(&std::env::var_os("HOME")?)
        .join(".postgresql")
        .join(file);
    path.is_file().then_some(path)
}

/// The roots of `sslrootcert`: a PEM file, or `system`.
fn roots(source: &str) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if source == "system" {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = store.add(cert);
        }
        if store.is_empty() {
            return Err(Error::Invalid(
                "sslrootcert=system: the platform has no root certificates (install \
                 ca-certificates)"
                    .into(),
            ));
        }
        return Ok(store);
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(source)
        .and_then(|certs| certs.collect())
        .map_err(|e| Error::Invalid(format!("sslrootcert `{source}`: {e}")))?;
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| Error::Invalid(format!("sslrootcert `{source}`: {e}")))?;
    }
    if store.is_empty() {
        return Err(Error::Invalid(format!(
            "sslrootcert `{source}` holds no certificate"
        )));
    }
    Ok(store)
}

/// Takes the TLS parameters out of `url`; returns the rest and them.
pub fn split(url: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    let mut take = |key: &str, value: String| -> bool {
        let slot = match key {
            "sslmode" => &mut params.sslmode,
            "sslrootcert" => &mut params.sslrootcert,
            "sslcert" => &mut params.sslcert,
            "sslkey" => &mut params.sslkey,
            _ => return false,
        };
        *slot = Some(value);
        true
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), params));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&decode(key)?, decode(value)?) {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, params));
    }
    // key=value pairs, values optionally in single quotes with backslash escapes.
    let mut kept = Vec::new();
    let mut chars = url.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(Error::Invalid(format!(
                "database URL: `{key}` has no value"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let mut raw = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            raw.push('\'');
            loop {
                match chars.next() {
                    Some('\\') => {
                        let c = chars.next().unwrap_or_default();
                        raw.extend(['\\', c]);
                        value.push(c);
                    }
                    Some('\'') => {
                        raw.push('\'');
                        break;
                    }
                    Some(c) => {
                        raw.push(c);
                        value.push(c);
                    }
                    None => {
                        return Err(Error::Invalid(format!(
                            "database URL: the value of `{key}` has no closing quote"
                        )));
                    }
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
            raw = value.clone();
        }
        if !take(&key, value) {
            kept.push(format!("{key}={raw}"));
        }
    }
    Ok((kept.join(" "), params))
}

/// Percent-decodes a URL query component.
fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!("database URL: `{s}` is not percent-encoded"))
                    })?;
                out.push(byte);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::Invalid(format!("database URL: `{s}` is not UTF-8")))
}

/// `require` and `prefer`: encrypted, the certificate taken as it comes (libpq's meaning).
/// The handshake's signatures are still checked, so the session is with the key holder.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must reach a root; the name it was issued for is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_parameters_come_out_of_both_url_forms() {
        let (rest, p) = split(
            "postgres://u:p@db.example.com:5432/app?sslmode=verify-full&application_name=x\
             &sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db.example.com:5432/app?application_name=x"
        );
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/etc/ca.pem"));

        let (rest, p) =
            split("host=db port=5432 sslmode=require sslcert='/a b/c.crt' user=u").unwrap();
        assert_eq!(rest, "host=db port=5432 user=u");
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        assert_eq!(p.sslcert.as_deref(), Some("/a b/c.crt"));

        let (rest, p) = split("postgres://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), p),
            ("postgres://u@h/db", TlsParams::default())
        );
    }

    #[test]
    fn modes_that_check_the_server_need_roots() {
        let e = target("postgres://u@h/db?sslmode=verify-full")
            .err()
            .unwrap();
        assert!(e.to_string().contains("needs sslrootcert"), "{e}");
        let e = target("postgres://u@h/db?sslmode=sometimes").err().unwrap();
        assert!(e.to_string().contains("is not one of"), "{e}");
        let e = target("postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent")
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent"), "{e}");
        assert!(target("postgres://u@h/db?sslmode=require").is_ok());
        assert!(target("postgres://u@h/db?sslmode=disable").is_ok());
    }
}
