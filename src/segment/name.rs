//! Names of shared-memory segments.

use crate::error::{Error, Result};

/// The longest name accepted, without the leading `/` (NAME_MAX is 255 on Linux; we keep a margin
/// for tools that add a prefix).
pub const MAX_NAME_LEN: usize = 240;

/// Validates a segment name and returns it in the form `shm_open` takes: one leading `/`.
///
/// The leading `/` is optional in the API (`"orders"` and `"/orders"` are one name); no other
/// `/` may appear, and the name may not be empty.
pub fn normalize_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let reason = if bare.is_empty() {
        Some("the name is empty")
    } else if bare.contains('/') {
        Some("a segment name may not contain '/' (other than one leading '/')")
    } else if bare.len() > MAX_NAME_LEN {
        Some("the name is longer than 240 bytes")
    } else if bare.contains('\0') {
        Some("the name contains a NUL byte")
    } else if bare == "." || bare == ".." {
        Some("'.' and '..' are not segment names")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(format!("/{bare}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_slash_is_optional_and_others_are_refused() {
        assert_eq!(normalize_name("orders").unwrap(), "/orders");
        assert_eq!(normalize_name("/orders").unwrap(), "/orders");
        assert!(normalize_name("a/b").is_err());
        assert!(normalize_name("").is_err());
        assert!(normalize_name("..").is_err());
        assert!(normalize_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
