//! What a secret says about itself: the expiry a JSON Web Token carries in
//! its `exp` claim (ACR refresh tokens, many registry and OAuth tokens), or
//! an Amazon ECR password in its `expiration` field, so the host can
//! refresh before it and the container stops handing it out at it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The expiry `secret` carries itself (unix seconds), if any: a JWT's `exp`
/// or an ECR password's `expiration`.
pub fn expiry(secret: &str) -> Option<u64> {
    jwt_expiry(secret).or_else(|| ecr_expiry(secret))
}

/// Largest ECR password looked into; real ones are a few KiB.
const MAX_ECR_PASSWORD: usize = 64 * 1024;

/// The `expiration` (unix seconds) of an Amazon ECR registry password, as
/// `docker-credential-ecr-login` hands it out: standard base64 of a JSON
/// object with `payload`, `datakey` and a numeric `expiration`. `None` for
/// anything else. Nothing is verified: the expiry only decides when to
/// refresh.
pub fn ecr_expiry(secret: &str) -> Option<u64> {
    let secret = secret.trim();
    if secret.len() > MAX_ECR_PASSWORD {
        return None;
    }
    let decoded = Zeroizing::new(STANDARD.decode(secret).ok()?);
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&decoded).ok()?;
    if !fields.contains_key("payload") || !fields.contains_key("datakey") {
        return None;
    }
    number_secs(fields.get("expiration")?)
}

/// A non-negative number of seconds, whole or not.
fn number_secs(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}
use zeroize::Zeroizing;

/// The `exp` claim (unix seconds) of `secret` when it is a JWT
/// (`header.payload.signature`, base64url without padding, the payload a
/// JSON object with a numeric `exp`); `None` for anything else. Nothing is
/// verified: the expiry only decides when to refresh.
pub fn jwt_expiry(secret: &str) -> Option<u64> {
    let mut parts = secret.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    // Some issuers pad; the standard says they must not, so accept both.
    let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&decoded).ok()?;
    number_secs(claims.get("exp")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn ecr_passwords_carry_their_expiration() {
        let ecr = |json: &str| STANDARD.encode(json);
        let token = ecr(
            r#"{"payload":"cGF5","datakey":"a2V5","version":"2","type":"DATA_KEY","expiration":1795970000}"#,
        );
        assert_eq!(ecr_expiry(&token), Some(1795970000));
        assert_eq!(expiry(&token), Some(1795970000));
        for not in [
            ecr(r#"{"expiration":1795970000}"#),
            ecr(r#"{"payload":"x","datakey":"y"}"#),
            ecr(r#"{"payload":"x","datakey":"y","expiration":"soon"}"#),
            ecr(r#"{"payload":"x","datakey":"y","expiration":-1}"#),
            "hunter2".to_string(),
            String::new(),
        ] {
            assert_eq!(ecr_expiry(&not), None, "{not}");
        }
    }

    #[test]
    fn reads_exp_and_ignores_everything_else() {
        assert_eq!(
            jwt_expiry(&jwt(r#"{"sub":"x","exp":1795970000}"#)),
            Some(1795970000)
        );
        assert_eq!(
            jwt_expiry(&jwt(r#"{"exp":1795970000.5}"#)),
            Some(1795970000)
        );
        for not in [
            jwt(r#"{"sub":"x"}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt(r#"{"exp":-5}"#),
            jwt("[1]"),
            "ya29.opaque-access-token".into(),
            "plain-password".into(),
            "a.b.c.d".into(),
            "..".into(),
            String::new(),
        ] {
            assert_eq!(jwt_expiry(&not), None, "{not}");
        }
    }
}
