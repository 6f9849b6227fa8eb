use kiln_macros::Form;

#[derive(Form)]
struct Contact {
    #[form(widget = "radio")]
    name: String,
}

fn main() {}
