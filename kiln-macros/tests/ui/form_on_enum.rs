use kiln_macros::Form;

#[derive(Form)]
enum Size {
    Small,
}

fn main() {}
