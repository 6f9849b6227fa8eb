//! Procedural macros for Kiln. They generate calls into ordinary, documented
//! runtime code in the `kiln` crate; use them through `kiln` (`#[kiln::main]`).

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemFn, ReturnType, parse_macro_input};

/// Turns `fn main() -> Project { ... }` into a program whose command line is
/// the project's management commands (`runserver`, `routes`, `check`).
///
/// ```ignore
/// #[kiln::main]
/// fn main() -> kiln::Project {
///     kiln::project!().route("/", "index", kiln::urls::get(|| async { "Hello" }))
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[kiln::main] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let function = parse_macro_input!(item as ItemFn);
    if function.sig.asyncness.is_some() {
        return syn::Error::new_spanned(
            function.sig.asyncness,
            "#[kiln::main] builds the async runtime itself: make `main` a plain `fn` that returns the Project",
        )
        .to_compile_error()
        .into();
    }
    if matches!(function.sig.output, ReturnType::Default) {
        return syn::Error::new_spanned(
            &function.sig,
            "#[kiln::main] expects `fn main() -> kiln::Project`",
        )
        .to_compile_error()
        .into();
    }
    let body = &function.block;
    let output = &function.sig.output;
    let attrs = &function.attrs;
    quote! {
        #(#attrs)*
        fn main() -> ::std::process::ExitCode {
            fn __kiln_project() #output #body
            ::kiln::cli::main(__kiln_project())
        }
    }
    .into()
}
