//! `#[derive(Form)]` and `#[derive(Choices)]`: the attribute parsing and the
//! calls into `kiln::forms`, where the behaviour lives.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, LitStr, Path};

const FIELD_ATTRIBUTES: &str = "label, help_text, max_length, min_length, min, max, regex, \
                                validate, widget, initial";

pub(crate) fn derive_form(input: &DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[derive(Form)] does not support generic structs; fix: declare the form with concrete field types",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(Form)] works on structs with named fields; fix: for a choice among values, use #[derive(Choices)] on the enum and a field of that type",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &data.fields,
            "#[derive(Form)] needs named fields (`struct Contact { name: String }`), each one a form field",
        ));
    };

    let mut clean = None;
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("form"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("clean") {
                clean = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("unknown struct-level form attribute; expected `clean = path::to_fn` (a `fn(&Self) -> Result<(), ValidationError>`)"))
            }
        })?;
    }

    let mut specs = Vec::new();
    let mut takes = Vec::new();
    let mut idents = Vec::new();
    let mut values = Vec::new();
    for (index, field) in fields.named.iter().enumerate() {
        let Some(ident) = &field.ident else { continue };
        let ty = &field.ty;
        let key = ident.to_string();
        let key = key.strip_prefix("r#").unwrap_or(&key).to_owned();
        let mut calls = Vec::new();
        let mut validators = Vec::new();
        for attr in field
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("form"))
        {
            attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                let option = path.get_ident().map(ToString::to_string).unwrap_or_default();
                match option.as_str() {
                    "label" | "help_text" => {
                        let text: LitStr = meta.value()?.parse()?;
                        let method = syn::Ident::new(&option, path.span());
                        calls.push(quote! { .#method(#text) });
                    }
                    "max_length" | "min_length" => {
                        let n: syn::LitInt = meta.value()?.parse()?;
                        n.base10_parse::<usize>()?;
                        let method = syn::Ident::new(&option, path.span());
                        calls.push(quote! { .#method(#n) });
                    }
                    "min" | "max" => {
                        let bound: Expr = meta.value()?.parse()?;
                        let method = syn::Ident::new(&option, path.span());
                        calls.push(quote_spanned! { bound.span()=> .#method(::core::convert::From::from(#bound)) });
                    }
                    "regex" => {
                        let pattern: LitStr = meta.value()?.parse()?;
                        calls.push(quote! { .regex(#pattern) });
                    }
                    "validate" => {
                        let function: Path = meta.value()?.parse()?;
                        validators.push(function);
                    }
                    "initial" => {
                        let initial: Expr = meta.value()?.parse()?;
                        calls.push(quote! { .initial(#initial) });
                    }
                    "widget" => {
                        let widget: LitStr = meta.value()?.parse()?;
                        let variant = match widget.value().as_str() {
                            "text" => quote! { Text },
                            "textarea" => quote! { Textarea },
                            "password" => quote! { Password },
                            "hidden" => quote! { Hidden },
                            "select" => quote! { Select },
                            "radio" => quote! { Radio },
                            "checkboxes" => quote! { CheckboxMultiple },
                            "select_multiple" => quote! { SelectMultiple },
                            other => {
                                return Err(syn::Error::new_spanned(
                                    &widget,
                                    format!("unknown widget {other:?}; expected \"text\", \"textarea\", \"password\", \"hidden\", \"select\" or \"radio\" (one choice), \"select_multiple\" or \"checkboxes\" (several choices); the field's type chooses the others"),
                                ));
                            }
                        };
                        calls.push(quote! { .widget(::kiln::forms::Widget::#variant) });
                    }
                    _ => {
                        return Err(meta.error(format!(
                            "unknown form attribute; expected one of: {FIELD_ATTRIBUTES}"
                        )));
                    }
                }
                Ok(())
            })?;
        }
        specs.push(quote_spanned! { ty.span()=>
            <#ty as ::kiln::forms::FormValue>::spec(#key) #(#calls)*
        });
        let validators = validators.iter().map(|function| {
            quote_spanned! { function.span()=> #function as ::kiln::forms::Validator<#ty> }
        });
        takes.push(quote! {
            let #ident = ::kiln::forms::take_field::<#ty>(input, &fields[#index], &[#(#validators),*], errors);
        });
        values.push(quote! { (#key, ::kiln::forms::FormValue::to_texts(&self.#ident)) });
        idents.push(ident);
    }

    let clean = clean.map(|function| {
        quote! {
            fn clean(&self) -> ::core::result::Result<(), ::kiln::forms::ValidationError> {
                #function(self)
            }
        }
    });

    Ok(quote! {
        impl ::kiln::forms::FormData for #name {
            fn fields() -> &'static [::kiln::forms::FieldSpec] {
                static FIELDS: ::std::sync::OnceLock<::std::vec::Vec<::kiln::forms::FieldSpec>> =
                    ::std::sync::OnceLock::new();
                ::kiln::forms::fields_once(&FIELDS, || ::std::vec![#(#specs),*])
            }

            fn from_input(
                input: &mut ::kiln::forms::FormInput,
                errors: &mut ::kiln::forms::FormErrors,
            ) -> ::core::option::Option<Self> {
                let fields = <Self as ::kiln::forms::FormData>::fields();
                #(#takes)*
                ::core::option::Option::Some(Self { #(#idents: #idents?),* })
            }

            #clean

            fn to_values(&self) -> ::std::vec::Vec<(&'static str, ::std::vec::Vec<::std::string::String>)> {
                ::std::vec![#(#values),*]
            }
        }
    })
}

pub(crate) fn derive_choices(input: &DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(Choices)] works on enums of unit variants (`enum Size { Small, Large }`)",
        ));
    };
    let mut pairs = Vec::new();
    let mut parse_arms = Vec::new();
    let mut value_arms = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                &variant.fields,
                "a choice is a unit variant; fix: remove the variant's fields",
            ));
        }
        let ident = &variant.ident;
        let mut value = snake_case(&ident.to_string());
        let mut label = words(&ident.to_string());
        for attr in variant
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("choice"))
        {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("value") {
                    value = meta.value()?.parse::<LitStr>()?.value();
                } else if meta.path.is_ident("label") {
                    label = meta.value()?.parse::<LitStr>()?.value();
                } else {
                    return Err(meta.error(
                        "unknown choice attribute; expected `value = \"...\"` or `label = \"...\"`",
                    ));
                }
                Ok(())
            })?;
        }
        pairs.push(quote! { (#value, #label) });
        parse_arms.push(quote! { #value => ::core::option::Option::Some(Self::#ident), });
        value_arms.push(quote! { Self::#ident => #value, });
    }
    Ok(quote! {
        impl ::kiln::forms::Choices for #name {
            fn choices() -> &'static [(&'static str, &'static str)] {
                &[#(#pairs),*]
            }

            fn from_value(value: &str) -> ::core::option::Option<Self> {
                match value {
                    #(#parse_arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn value(&self) -> &'static str {
                match self {
                    #(#value_arms)*
                }
            }
        }

        impl ::kiln::forms::FormValue for #name {
            type Target = Self;

            fn target(&self) -> ::core::option::Option<&Self> {
                ::core::option::Option::Some(self)
            }

            fn spec(name: &str) -> ::kiln::forms::FieldSpec {
                ::kiln::forms::choice_spec::<Self>(name)
            }

            fn from_text(text: &str) -> ::core::result::Result<Self, ::kiln::forms::ValidationError> {
                ::kiln::forms::choice_from_text(text)
            }

            fn to_text(&self) -> ::core::option::Option<::std::string::String> {
                ::core::option::Option::Some(::kiln::forms::Choices::value(self).to_owned())
            }
        }
    })
}

/// `InProgress` -> `in_progress`
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `InProgress` -> `In progress`
fn words(name: &str) -> String {
    let snake = snake_case(name).replace('_', " ");
    let mut chars = snake.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => snake,
    }
}
