use kiln_macros::Form;

#[derive(Form)]
#[form(validate = Contact::check)]
struct Contact {
    name: String,
}

fn main() {}
