//! Rebuilds when the default layout changes: it is compiled into the binary, and cargo does
//! not otherwise notice files added to or removed from that folder.
fn main() {
    println!("cargo:rerun-if-changed=layouts/default");
}
