//! Who may use the console and as what: users with a role and a salted, slow password hash
//! (PBKDF2-HMAC-SHA256), sessions in a signed cookie (HMAC-SHA256, with an expiry), and the
//! token that proves a form was sent from a console page (CSRF). Pure: no IO.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom;
use ring::{hmac, pbkdf2};
use serde::Deserialize;

/// What a user may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches routing, mends what is stuck (replay, discard, retry), manages the registry.
    Operator,
    /// Audits signature verdicts and the trust store.
    Security,
    /// An agency's clerk: follows the documents of its own agencies only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Security => "security",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(Role::Operator),
            "security" => Ok(Role::Security),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "`{other}` is not a role (operator, security, viewer)"
            )),
        }
    }
}

/// `[[console.users]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Letters, digits, `.`, `_`, `@`, `-`; up to 64.
    pub name: String,
    pub role: Role,
    /// `pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64), from `lienthong admin console-user`.
    pub password: String,
    /// For a viewer: the OrganIds whose documents it sees (at least one).
    #[serde(default)]
    pub agencies: Vec<String>,
}

impl User {
    /// Whether a viewer's agencies include `organ`; other roles see every agency.
    pub fn sees(&self, organ: &str) -> bool {
        self.role != Role::Viewer || self.agencies.iter().any(|a| a == organ)
    }
}

/// What is wrong with `[[console.users]]`, naming the user and the field.
pub fn check_users(users: &[User]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let at = format!("console.users[{i}] ({})", u.name);
        if !valid_name(&u.name) {
            return Err(format!("{at}: name: 1 to 64 letters, digits or . _ @ -"));
        }
        if !seen.insert(u.name.as_str()) {
            return Err(format!("{at}: name: listed twice"));
        }
        PasswordHash::parse(&u.password).map_err(|e| format!("{at}: password: {e}"))?;
        if u.role == Role::Viewer && u.agencies.is_empty() {
            return Err(format!(
                "{at}: agencies: a viewer sees only its agencies; name at least one"
            ));
        }
    }
    Ok(())
}

pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// Iterations for new hashes (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const ITERATIONS: u32 = 600_000;

struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl PasswordHash {
    fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('$').collect();
        let [scheme, iterations, salt, hash] = parts.as_slice() else {
            return Err("not pbkdf2-sha256$ITERATIONS$SALT$HASH".into());
        };
        if *scheme != "pbkdf2-sha256" {
            return Err(format!("scheme `{scheme}` is not pbkdf2-sha256"));
        }
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or("iterations: not a positive number")?;
        let salt = STANDARD.decode(salt).map_err(|_| "salt: not base64")?;
        let hash = STANDARD.decode(hash).map_err(|_| "hash: not base64")?;
        if salt.len() < 16 || hash.len() != 32 {
            return Err("a 16-byte salt or more and a 32-byte hash are required".into());
        }
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }
}

/// A new password hash with a random salt.
pub fn hash_password(password: &str, iterations: u32) -> Result<String, String> {
    let iterations = NonZeroU32::new(iterations).ok_or("iterations must be positive")?;
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness")?;
    let mut hash = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!(
        "pbkdf2-sha256${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    ))
}

/// Whether `password` matches `stored` (in constant time).
pub fn password_matches(stored: &str, password: &str) -> bool {
    let Ok(h) = PasswordHash::parse(stored) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        h.iterations,
        &h.salt,
        password.as_bytes(),
        &h.hash,
    )
    .is_ok()
}

/// Signs and checks session cookies and form tokens.
#[derive(Clone)]
pub struct Sessions {
    key: hmac::Key,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(..)")
    }
}

impl Sessions {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A key of its own, made now.
    pub fn random() -> Result<Self, String> {
        let mut secret = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| "no randomness")?;
        Ok(Self::new(&secret))
    }

    /// The cookie value of a session for `user` until `expires_ms`.
    pub fn issue(&self, user: &str, expires_ms: i64) -> String {
        let body = URL_SAFE_NO_PAD.encode(format!("{user}|{expires_ms}"));
        let tag = hmac::sign(&self.key, format!("session|{body}").as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The user of a cookie this key signed and that has not expired at `now_ms`.
    pub fn check(&self, cookie: &str, now_ms: i64) -> Option<String> {
        let (body, tag) = cookie.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, format!("session|{body}").as_bytes(), &tag).ok()?;
        let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        let (user, expires) = plain.rsplit_once('|')?;
        (expires.parse::<i64>().ok()? > now_ms).then(|| user.to_owned())
    }

    /// The token every form of this session carries: a page of another site cannot know it.
    pub fn form_token(&self, cookie: &str) -> String {
        let tag = hmac::sign(&self.key, format!("form|{cookie}").as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }

    pub fn form_token_matches(&self, cookie: &str, token: &str) -> bool {
        let Ok(given) = hex::decode(token) else {
            return false;
        };
        let tag = hmac::sign(&self.key, format!("form|{cookie}").as_bytes());
        // Compared in constant time: every byte is looked at whatever the first difference.
        given.len() == 16
            && tag.as_ref()[..16]
                .iter()
                .zip(&given)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_only() {
        let h = hash_password("đúng mật khẩu", 1000).expect("hash");
        assert!(h.starts_with("pbkdf2-sha256$1000$"));
        assert!(password_matches(&h, "đúng mật khẩu"));
        assert!(!password_matches(&h, "đúng mật khẩU"));
        assert!(
            !password_matches("plain", "plain"),
            "a plain password is never accepted"
        );
        assert_ne!(
            h,
            hash_password("đúng mật khẩu", 1000).expect("hash"),
            "salted"
        );
    }

    #[test]
    fn sessions_expire_and_cannot_be_forged_or_moved_to_another_key() {
        let s = Sessions::new(b"k1");
        let c = s.issue("an.nguyen", 2_000);
        assert_eq!(s.check(&c, 1_999).as_deref(), Some("an.nguyen"));
        assert_eq!(s.check(&c, 2_000), None, "expired");
        assert_eq!(Sessions::new(b"k2").check(&c, 0), None, "another key");
        // Changing the user or the expiry breaks the tag.
        let (_, tag) = c.split_once('.').expect("dot");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("admin|9999999"));
        assert_eq!(s.check(&forged, 0), None);
        assert_eq!(s.check("garbage", 0), None);
        let t = s.form_token(&c);
        assert!(s.form_token_matches(&c, &t));
        assert!(!s.form_token_matches(&s.issue("other", 2_000), &t));
        assert!(!s.form_token_matches(&c, "00"));
    }

    #[test]
    fn user_lists_are_checked_naming_the_user_and_the_field() {
        let pw = hash_password("x", 10).expect("hash");
        let user = |name: &str, role, agencies: &[&str]| User {
            name: name.into(),
            role,
            password: pw.clone(),
            agencies: agencies.iter().map(|a| (*a).to_owned()).collect(),
        };
        assert!(check_users(&[user("an", Role::Operator, &[])]).is_ok());
        let e = check_users(&[user("so", Role::Viewer, &[])]).expect_err("viewer");
        assert!(e.starts_with("console.users[0] (so): agencies"), "{e}");
        let e = check_users(&[user("a b", Role::Operator, &[])]).expect_err("name");
        assert!(e.contains("name:"), "{e}");
        let e = check_users(&[
            user("an", Role::Operator, &[]),
            user("an", Role::Security, &[]),
        ])
        .expect_err("twice");
        assert!(e.contains("listed twice"), "{e}");
        let mut bad = user("an", Role::Operator, &[]);
        bad.password = "secret".into();
        let e = check_users(&[bad]).expect_err("plain");
        assert!(e.contains("password: not pbkdf2"), "{e}");
        let viewer = user("so", Role::Viewer, &["000.00.01.H29"]);
        assert!(viewer.sees("000.00.01.H29") && !viewer.sees("000.00.02.H29"));
        assert!(user("an", Role::Operator, &[]).sees("000.00.02.H29"));
    }
}
