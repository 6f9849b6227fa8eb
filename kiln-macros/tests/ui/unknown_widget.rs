use kiln_macros::Form;

#[derive(Form)]
struct Contact {
    #[form(widget = "slider")]
    name: String,
}

fn main() {}
