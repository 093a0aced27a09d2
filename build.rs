//! Migrations are embedded by `refinery::embed_migrations!`, which cannot tell cargo which
//! files it read: without this, a new file in `migrations/` is left out of an incremental
//! build until a source file changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
