//! Connection limits: at most so many connections in total and from one
//! client address. One [`ConnectionLimits`] may be shared by several
//! listeners (mailroomd gives IMAP and IMAPS one, so the bound is the
//! protocol's); the address counted is the client's real one, after a
//! PROXY header.
//!
//! IPv6 clients are counted by their /64 network (one host usually has a
//! whole /64 to pick addresses from); IPv4-mapped IPv6 addresses count as
//! IPv4.
//!
//! ```
//! use mailroom_server::limit::{ConnectionLimits, Refusal};
//!
//! let limits = ConnectionLimits::new(3, 2);
//! let ip = Some("192.0.2.1".parse().unwrap());
//! let a = limits.try_admit(ip).unwrap();
//! let b = limits.try_admit(ip).unwrap();
//! assert_eq!(limits.try_admit(ip).unwrap_err(), Refusal::TooManyFromAddress);
//! let c = limits.try_admit(Some("192.0.2.2".parse().unwrap())).unwrap();
//! assert_eq!(limits.try_admit(None).unwrap_err(), Refusal::TooManyConnections);
//! drop(a); // a connection ended: its slot is free again
//! assert!(limits.try_admit(ip).is_ok());
//! # drop((b, c));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Why the runtime refused a connection; the protocol turns it into its
/// own words ([`Protocol::refusal`](crate::Protocol::refusal)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The listener's (or protocol's) total is reached.
    TooManyConnections,
    /// The client's address has its share already.
    TooManyFromAddress,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::TooManyConnections => "too many connections",
            Refusal::TooManyFromAddress => "too many connections from your address",
        })
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Inner {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

/// Total and per-address connection limits; cheap to clone, clones share
/// the counts.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

impl ConnectionLimits {
    /// At most `max_total` connections, `max_per_ip` of them from one
    /// address (IPv6: one /64).
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            inner: Arc::new(Inner {
                max_total,
                max_per_ip,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// The total limit.
    pub fn max_total(&self) -> usize {
        self.inner.max_total
    }

    /// The per-address limit.
    pub fn max_per_ip(&self) -> usize {
        self.inner.max_per_ip
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent under a panic elsewhere: every change
        // is one statement.
        self.inner.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a connection from `ip` (`None`: a Unix socket,
    /// counted in the total only). The slot is given back when the
    /// [`Admission`] is dropped.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] when a limit is reached.
    pub fn try_admit(&self, ip: Option<IpAddr>) -> Result<Admission, Refusal> {
        let key = ip.map(key);
        let mut counts = self.counts();
        if counts.total >= self.inner.max_total {
            return Err(Refusal::TooManyConnections);
        }
        if let Some(key) = key {
            let n = counts.per_ip.entry(key).or_insert(0);
            if *n >= self.inner.max_per_ip {
                if *n == 0 {
                    counts.per_ip.remove(&key);
                }
                return Err(Refusal::TooManyFromAddress);
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(Admission {
            limits: self.clone(),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Connections open now from `ip` (its /64 for IPv6).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.counts().per_ip.get(&key(ip)).copied().unwrap_or(0)
    }
}

/// The address a connection is counted under.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// A connection's slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Admission {
    limits: ConnectionLimits,
    key: Option<IpAddr>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(key) = self.key
            && let Some(n) = counts.per_ip.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let limits = ConnectionLimits::new(10, 1);
        let _a = limits
            .try_admit(Some("2001:db8::1".parse().unwrap()))
            .unwrap();
        assert_eq!(
            limits
                .try_admit(Some("2001:db8::ffff".parse().unwrap()))
                .unwrap_err(),
            Refusal::TooManyFromAddress
        );
        let _b = limits
            .try_admit(Some("2001:db8:0:1::1".parse().unwrap()))
            .unwrap();
        let _c = limits
            .try_admit(Some("192.0.2.1".parse().unwrap()))
            .unwrap();
        assert!(
            limits
                .try_admit(Some("::ffff:192.0.2.1".parse().unwrap()))
                .is_err()
        );
        assert_eq!(limits.open(), 3);
    }

    #[test]
    fn the_table_empties() {
        let limits = ConnectionLimits::new(10, 0);
        assert!(
            limits
                .try_admit(Some("192.0.2.1".parse().unwrap()))
                .is_err()
        );
        let a = limits.try_admit(None).unwrap();
        drop(a);
        assert!(limits.counts().per_ip.is_empty());
        assert_eq!(limits.open(), 0);
    }
}
