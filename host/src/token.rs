//! What a secret says about itself: the expiry a JSON Web Token carries in
//! its `exp` claim (ACR refresh tokens, many registry and OAuth tokens), so
//! the host can refresh before it and the container stops handing it out
//! at it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    let exp = claims.get("exp")?;
    exp.as_u64()
        .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
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
