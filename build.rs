//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/`, but on stable Rust it cannot ask cargo to watch the folder for new ones, so a
//! new file alone would leave the binary (and the tests) on the old schema.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
