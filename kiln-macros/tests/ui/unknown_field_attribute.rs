use kiln_macros::Form;

#[derive(Form)]
struct Contact {
    #[form(max_lenght = 10)]
    name: String,
}

fn main() {}
