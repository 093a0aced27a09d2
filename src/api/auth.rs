//! Bearer tokens: how they are made and stored, and [`Caller`], the extractor that turns
//! `Authorization: Bearer …` into the signed-in user or a 401.
//!
//! A session token is 32 random bytes in unpadded base64url, shown once when the session
//! opens; an API key is [`KEY_PREFIX`] and 32 more random bytes, shown once when it is
//! made ([`super::keys`]). Only their SHA-256 is stored (`sessions.token_hash`,
//! `api_keys.key_hash`): each carries 256 bits of entropy, so an unsalted fast hash is
//! enough to make a copy of the tables useless, and it lets the lookup be one indexed
//! equality. The prefix tells the two apart before any query, and lets secret scanners
//! recognise a leaked key.

use super::error::ApiError;
use super::state::ApiState;
use crate::{db, sql};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Length of a token as handed out: 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// What every API key starts with.
pub const KEY_PREFIX: &str = "octk_";

/// A fresh bearer token.
pub fn new_token() -> String {
    // ThreadRng is a CSPRNG seeded from the operating system.
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What `sessions.token_hash` holds for `token`.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// What a request was authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A session opened by signing in (`sessions.id`).
    Session(Uuid),
    /// An API key (`api_keys.id`).
    Key(Uuid),
}

/// The signed-in user of a request. Extracting it authenticates the request: without a
/// valid token or key the handler never runs and the client gets 401.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub credential: Credential,
    pub email: String,
    pub role: String,
}

impl Caller {
    /// The session of a caller who signed in; 403 for one using an API key, which may not
    /// manage sessions or keys (a leaked key must not be able to mint others).
    pub fn session(&self, what: &str) -> Result<Uuid, ApiError> {
        match self.credential {
            Credential::Session(id) => Ok(id),
            Credential::Key(_) => Err(ApiError::Forbidden(format!(
                "{what} needs a signed-in session (POST /api/sessions), not an API key"
            ))),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }

    /// Whether the caller may see a resource owned by `owner`: their own, or anyone's for
    /// an admin. Everything else is answered 404, as if it did not exist.
    pub fn can_read(&self, owner: Option<Uuid>) -> bool {
        self.is_admin() || owner == Some(self.user_id)
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let (token, is_key) = bearer_token(parts)?;
        let client = state.pool.get().await?;
        let statement = if is_key {
            sql::API_KEY_CALLER
        } else {
            sql::SESSION_BY_TOKEN
        };
        let row = db::query_opt(&client, statement, &[&token_hash(token)])
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the bearer token is not valid".into()))?;
        let id = row.get("id");
        Ok(Caller {
            credential: if is_key {
                Credential::Key(id)
            } else {
                Credential::Session(id)
            },
            user_id: row.get("user_id"),
            email: row.get("email"),
            role: row.get("role"),
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, as
/// RFC 9110 allows), and whether it is an API key. A token that could not have been
/// issued is refused without a query.
fn bearer_token(parts: &Parts) -> Result<(&str, bool), ApiError> {
    let missing = || {
        ApiError::Unauthorized(
            "this route needs an `Authorization: Bearer <token>` header; POST /api/sessions \
             gives a token"
                .into(),
        )
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let token = token.trim();
    let (random, is_key) = match token.strip_prefix(KEY_PREFIX) {
        Some(rest) => (rest, true),
        None => (token, false),
    };
    if !well_formed(random) {
        return Err(ApiError::Unauthorized(
            "the bearer token is not valid".into(),
        ));
    }
    Ok((token, is_key))
}

/// Whether `random` could be the random part of a token or key this API made.
fn well_formed(random: &str) -> bool {
    random.len() == TOKEN_LEN
        && random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh API key.
pub fn new_key() -> String {
    format!("{KEY_PREFIX}{}", new_token())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_url_safe_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn only_bearer_headers_with_well_formed_tokens_pass() {
        let token = new_token();
        let parts = |value: &str| {
            let (parts, ()) = axum::http::Request::builder()
                .header(header::AUTHORIZATION, value)
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        assert_eq!(
            bearer_token(&parts(&format!("Bearer {token}"))).unwrap(),
            (token.as_str(), false)
        );
        assert_eq!(
            bearer_token(&parts(&format!("bearer  {token} "))).unwrap(),
            (token.as_str(), false)
        );
        let key = new_key();
        assert_eq!(
            bearer_token(&parts(&format!("Bearer {key}"))).unwrap(),
            (key.as_str(), true)
        );
        for bad in [
            format!("Basic {token}"),
            "Bearer".to_string(),
            format!("Bearer {token}x"),
            format!("Bearer {}", &token[1..]),
            "Bearer ../../etc/passwd0000000000000000000000000".to_string(),
            format!("Bearer {KEY_PREFIX}{}", &token[1..]),
            format!("Bearer {KEY_PREFIX}{KEY_PREFIX}{token}"),
        ] {
            assert!(bearer_token(&parts(&bad)).is_err(), "{bad}");
        }
    }
}
