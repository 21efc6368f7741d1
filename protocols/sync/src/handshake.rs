//! Version negotiation and mutual challenge-response authentication
//! (`PROTOCOL.md`, "Handshake").
//!
//! Each end proves it knows the shared secret with
//! `HMAC-SHA-256(secret, "mailroom-sync" 0x00 role 0x00 primary_nonce replica_nonce)`.
//! Both nonces are fresh per connection, so a recorded proof is worthless on
//! the next one; the role is in the input, so a replica's proof cannot be
//! reflected back as a primary's. The secret never travels, and proofs are
//! compared in constant time (`hmac`'s `verify_slice`).

use std::ops::RangeInclusive;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::{Result, SyncError};
use crate::msgs::{NONCE_LEN, Role};

/// The protocol versions this build speaks.
pub const SUPPORTED_VERSIONS: RangeInclusive<u32> = 1..=1;

/// The label at the start of every proof's input.
pub const PROOF_LABEL: &[u8] = b"mailroom-sync";

/// The shared secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Secret {
    /// A secret from its bytes. At least 16 bytes (32 random bytes, e.g. as
    /// 64 hex digits in a file, is what a deployment should use).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Secret, SecretTooShort> {
        let bytes = bytes.into();
        if bytes.len() < 16 {
            return Err(SecretTooShort(bytes.len()));
        }
        Ok(Secret(bytes))
    }

    /// This end's proof for `role`.
    pub fn proof(
        &self,
        role: Role,
        primary_nonce: &[u8; NONCE_LEN],
        replica_nonce: &[u8; NONCE_LEN],
    ) -> [u8; 32] {
        let mac = self.mac(role, primary_nonce, replica_nonce);
        mac.finalize().into_bytes().into()
    }

    /// Checks the peer's proof for `role`, in constant time.
    pub fn verify(
        &self,
        role: Role,
        primary_nonce: &[u8; NONCE_LEN],
        replica_nonce: &[u8; NONCE_LEN],
        proof: &[u8],
    ) -> Result<()> {
        self.mac(role, primary_nonce, replica_nonce)
            .verify_slice(proof)
            .map_err(|_| SyncError::AuthFailed)
    }

    fn mac(
        &self,
        role: Role,
        primary_nonce: &[u8; NONCE_LEN],
        replica_nonce: &[u8; NONCE_LEN],
    ) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        mac.update(PROOF_LABEL);
        mac.update(&[0]);
        mac.update(role.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(primary_nonce);
        mac.update(replica_nonce);
        mac
    }
}

/// A secret shorter than 16 bytes was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the replication secret must be at least 16 bytes (got {0})")]
pub struct SecretTooShort(pub usize);

/// A fresh nonce from the operating system's CSPRNG (through `rand`'s
/// thread-local generator, reseeded from it).
pub fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut n);
    n
}

/// The version both ranges share (the highest), or the error naming both.
pub fn negotiate(ours: &RangeInclusive<u32>, peer_min: u32, peer_max: u32) -> Result<u32> {
    let low = (*ours.start()).max(peer_min);
    let high = (*ours.end()).min(peer_max);
    if peer_min <= peer_max && low <= high {
        Ok(high)
    } else {
        Err(SyncError::VersionUnsupported {
            peer_min,
            peer_max,
            ours_min: *ours.start(),
            ours_max: *ours.end(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proofs_depend_on_secret_role_and_nonces() {
        let s = Secret::new(*b"0123456789abcdef0123").unwrap();
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        let p = s.proof(Role::Primary, &a, &b);
        s.verify(Role::Primary, &a, &b, &p).unwrap();
        assert!(s.verify(Role::Replica, &a, &b, &p).is_err(), "reflected");
        assert!(
            s.verify(Role::Primary, &b, &a, &p).is_err(),
            "nonces swapped"
        );
        let other = Secret::new(*b"0123456789abcdef0124").unwrap();
        assert!(other.verify(Role::Primary, &a, &b, &p).is_err());
        assert!(s.verify(Role::Primary, &a, &b, &p[..31]).is_err());
        assert!(Secret::new(*b"short").is_err());
        assert!(!format!("{s:?}").contains("0123"));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&(1..=3), 2, 5).unwrap(), 3);
        let e = negotiate(&(1..=1), 2, 3).unwrap_err().to_string();
        assert!(e.contains("2..=3") && e.contains("1..=1"), "{e}");
        assert!(negotiate(&(1..=1), 3, 2).is_err());
    }
}
