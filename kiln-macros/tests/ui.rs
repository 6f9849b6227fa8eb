//! The macros' error messages point at the offending attribute and
//! say what to write instead. `TRYBUILD=overwrite cargo test -p kiln-macros`
//! rewrites the expected `.stderr` files after a deliberate change.

#[test]
fn derive_errors_point_at_the_bad_attribute() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
