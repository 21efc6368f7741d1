//! The checks of the `login_name` fuzz target: any bytes a client sends as
//! a login name (after SASL decoding) through the name rules. The includer
//! provides `crate::name` (`src/name.rs`, by path).

use crate::name::{MAX_NAME_BYTES, canonical_domain, canonical_name};

/// Never panics; an accepted name is canonical: accepting it again gives
/// it back unchanged, it is within the bounds, its domain is lower case
/// and valid on its own, and it differs from the input only in the case of
/// the domain.
pub(crate) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Each line is a name, so one input checks several.
    for name in text.split('\n') {
        let Ok(canonical) = canonical_name(name) else {
            continue;
        };
        assert_eq!(
            canonical_name(&canonical).as_deref(),
            Ok(canonical.as_str())
        );
        assert!(canonical.len() <= MAX_NAME_BYTES, "{canonical:?}");
        assert!(canonical.is_ascii(), "{canonical:?}");
        let (local, domain) = canonical
            .rsplit_once('@')
            .expect("an accepted name has an @");
        assert!(!local.contains('@'), "{canonical:?}");
        assert_eq!(canonical_domain(domain).as_deref(), Ok(domain));
        assert_eq!(domain, domain.to_ascii_lowercase());
        let (input_local, input_domain) = name.rsplit_once('@').expect("the input had an @");
        assert_eq!(input_local, local);
        assert!(input_domain.eq_ignore_ascii_case(domain));
    }
}
