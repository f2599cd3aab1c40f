// `sqlx::migrate!` embeds the migrations at compile time: rebuild this crate when one is added
// or changed (as sqlx's documentation recommends), or a test binary would carry a stale set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
