use kiln_macros::Choices;

#[derive(Choices)]
enum Size {
    Small,
    Custom(u32),
}

fn main() {}
