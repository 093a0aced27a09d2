//! What the sections' checks share: their error, and the checks several of them make.

/// A setting that is wrong, and why: what each section's `validate` returns, reported by
/// the loader with where the value came from.
pub(super) type Invalid = (&'static str, String);

/// Refuses 0.
pub(super) fn positive(name: &'static str, v: u64) -> Result<(), Invalid> {
    if v == 0 {
        return Err((name, "must be greater than 0".into()));
    }
    Ok(())
}

/// Whether `url` is an http(s) URL.
pub(super) fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}
