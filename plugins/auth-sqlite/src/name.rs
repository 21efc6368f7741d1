//! Login names: the rules a user or domain name must follow, and their
//! canonical form. Standard library only, so the `login_name` fuzz target
//! (`fuzz/`) includes this file by path without the plugin's dependencies.

/// The longest accepted user name, in bytes.
pub const MAX_NAME_BYTES: usize = 254;

/// The canonical form of a domain: lower case, labels of letters, digits
/// and inner `-`; or why it is not acceptable.
pub(crate) fn canonical_domain(domain: &str) -> Result<String, &'static str> {
    if domain.is_empty() || domain.len() > 253 {
        return Err("a domain must be 1 to 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("domain labels are 1 to 63 letters, digits and inner '-'");
        }
    }
    Ok(domain.to_ascii_lowercase())
}

/// The canonical form of a user name, `local@domain` (the local part as
/// given, the domain lower case); or why it is not acceptable.
pub(crate) fn canonical_name(name: &str) -> Result<String, &'static str> {
    if name.len() > MAX_NAME_BYTES {
        return Err("longer than 254 bytes");
    }
    let (local, domain) = name.rsplit_once('@').ok_or("must be USER@DOMAIN")?;
    if local.is_empty()
        || local.len() > 64
        || !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("the part before @ is 1 to 64 letters, digits, '_', '-' and inner single dots");
    }
    Ok(format!("{local}@{}", canonical_domain(domain)?))
}
