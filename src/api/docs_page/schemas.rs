//! The schemas section and the type of every field: how a JSON schema reads
//! to a person (`string`, `array of Snapshot`, `integer, 1 to 1440`).

use super::html::*;
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Object, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr};

pub(super) fn schemas_section(doc: &OpenApi) -> String {
    let mut html = String::from(
        "<section class=\"api-section\" id=\"schemas\" aria-labelledby=\"schemas-title\">\n\
         <h2 id=\"schemas-title\">Schemas</h2>\n",
    );
    let schemas = doc
        .components
        .as_ref()
        .map(|components| &components.schemas);
    for (name, schema) in schemas.into_iter().flatten() {
        let id = anchor("schema-", name);
        html.push_str(&format!(
            "<article class=\"api-schema\" id=\"{id}\" aria-labelledby=\"{id}-title\">\n<h3 id=\"{id}-title\"><code>{}</code></h3>\n",
            escape(name)
        ));
        match schema {
            RefOr::Ref(reference) => html.push_str(&format!(
                "<p>Same as {}.</p>\n",
                schema_link(ref_name(&reference.ref_location))
            )),
            RefOr::T(schema) => {
                if let Some(description) = description_of_schema(schema) {
                    html.push_str(&prose(description));
                }
                html.push_str(&schema_body(schema));
            }
        }
        html.push_str("</article>\n");
    }
    html.push_str("</section>\n");
    html
}

/// What a schema holds: its fields, its values, or its alternatives.
pub(super) fn schema_body(schema: &Schema) -> String {
    match schema {
        Schema::Object(object) if !object.properties.is_empty() => {
            let mut html = properties_table(object);
            if matches!(
                object.additional_properties.as_deref(),
                Some(AdditionalProperties::FreeForm(false))
            ) {
                html.push_str("<p class=\"api-note\">Other fields are refused.</p>\n");
            }
            html
        }
        Schema::OneOf(one_of) => alternatives_body("One of these shapes:", &one_of.items),
        Schema::AnyOf(any_of) => alternatives_body("Any of these shapes:", &any_of.items),
        Schema::AllOf(all_of) => alternatives_body("All of these at once:", &all_of.items),
        other => format!("<p>Type: {}</p>\n", schema_type_html(other)),
    }
}

pub(super) fn alternatives_body(heading: &str, items: &[RefOr<Schema>]) -> String {
    let mut html = format!("<p>{heading}</p>\n<ul class=\"api-variants\">\n");
    for item in items {
        html.push_str("<li class=\"api-variant\">");
        match item {
            RefOr::Ref(reference) => html.push_str(&schema_link(ref_name(&reference.ref_location))),
            RefOr::T(schema) => {
                if let Some(description) = description_of_schema(schema) {
                    html.push_str(&prose(description));
                }
                html.push_str(&schema_body(schema));
            }
        }
        html.push_str("</li>\n");
    }
    html.push_str("</ul>\n");
    html
}

pub(super) fn properties_table(object: &Object) -> String {
    let mut html = table_start(&["Field", "Type", "Required", "Description"]);
    for (name, property) in &object.properties {
        let description = match property {
            RefOr::Ref(reference) if !reference.description.is_empty() => {
                Some(reference.description.as_str())
            }
            RefOr::Ref(_) => None,
            RefOr::T(schema) => description_of_schema(schema),
        };
        html.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"api-desc\">{}{}</td></tr>\n",
            escape(name),
            type_html(property),
            yes_no(object.required.iter().any(|required| required == name)),
            description.map(inline).unwrap_or_default(),
            constraints_of(property),
        ));
    }
    html.push_str(TABLE_END);
    html
}

/// A short type label: a link for a named schema, else the JSON type.
pub(super) fn type_html(schema: &RefOr<Schema>) -> String {
    match schema {
        RefOr::Ref(reference) => schema_link(ref_name(&reference.ref_location)),
        RefOr::T(schema) => schema_type_html(schema),
    }
}

pub(super) fn schema_type_html(schema: &Schema) -> String {
    match schema {
        Schema::Object(object) => object_type_html(object),
        Schema::Array(array) => match &array.items {
            ArrayItems::RefOrSchema(items) => format!("array of {}", type_html(items)),
            ArrayItems::False => "array".to_string(),
        },
        Schema::OneOf(one_of) => alternatives_html(&one_of.items, " or "),
        Schema::AnyOf(any_of) => alternatives_html(&any_of.items, " or "),
        Schema::AllOf(all_of) => alternatives_html(&all_of.items, " and "),
        _ => "any".to_string(),
    }
}

/// Alternatives with `null` last, so `Option<LastError>` reads
/// "LastError or null".
pub(super) fn alternatives_html(items: &[RefOr<Schema>], joiner: &str) -> String {
    let is_null = |item: &RefOr<Schema>| {
        matches!(item, RefOr::T(Schema::Object(object))
            if object.schema_type == SchemaType::Type(Type::Null))
    };
    let mut labels: Vec<String> = items
        .iter()
        .filter(|item| !is_null(item))
        .map(type_html)
        .collect();
    if items.iter().any(is_null) {
        labels.push("null".to_string());
    }
    labels.join(joiner)
}

pub(super) fn object_type_html(object: &Object) -> String {
    if let Some(values) = &object.enum_values {
        let values: Vec<String> = values
            .iter()
            .map(|value| format!("<code>{}</code>", escape(&value.to_string())))
            .collect();
        return match values.as_slice() {
            [only] => only.clone(),
            _ => format!("one of {}", values.join(", ")),
        };
    }
    let mut types: Vec<&str> = match &object.schema_type {
        SchemaType::Type(kind) => vec![type_name(kind)],
        SchemaType::Array(kinds) => kinds.iter().map(type_name).collect(),
        SchemaType::AnyValue => vec!["any"],
    };
    // `null` last, as for alternatives.
    types.sort_by_key(|kind| *kind == "null");
    let mut label = types.join(" or ");
    if let Some(format) = object
        .format
        .as_ref()
        .and_then(|format| serde_json::to_value(format).ok())
        .and_then(|value| value.as_str().map(str::to_string))
    {
        label.push_str(&format!(" ({})", escape(&format)));
    }
    if let Some(additional) = object.additional_properties.as_deref() {
        let values = match additional {
            AdditionalProperties::RefOr(schema) => type_html(schema),
            AdditionalProperties::FreeForm(true) => "any".to_string(),
            AdditionalProperties::FreeForm(false) => String::new(),
        };
        if !values.is_empty() && object.properties.is_empty() {
            label = format!("map of string to {values}");
        }
    }
    label
}

pub(super) fn type_name(kind: &Type) -> &'static str {
    match kind {
        Type::Object => "object",
        Type::String => "string",
        Type::Integer => "integer",
        Type::Number => "number",
        Type::Boolean => "boolean",
        Type::Array => "array",
        Type::Null => "null",
    }
}

/// Bounds and patterns worth telling, e.g. " (from 1 to 1440)".
pub(super) fn constraints_of(schema: &RefOr<Schema>) -> String {
    let RefOr::T(Schema::Object(object)) = schema else {
        return String::new();
    };
    let mut parts = Vec::new();
    // utoipa marks unsigned integers with minimum 0; that says nothing new.
    if let Some(minimum) = object.minimum.as_ref().map(number_text) {
        if minimum != "0" {
            parts.push(format!("minimum {}", escape(&minimum)));
        }
    }
    if let Some(maximum) = object.maximum.as_ref().map(number_text) {
        parts.push(format!("maximum {}", escape(&maximum)));
    }
    if let Some(pattern) = &object.pattern {
        parts.push(format!("pattern <code>{}</code>", escape(pattern)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(
            " <span class=\"api-constraints\">({})</span>",
            parts.join(", ")
        )
    }
}

/// `1`, not `1.0`, for whole numbers however utoipa stored them.
pub(super) fn number_text(number: &utoipa::Number) -> String {
    match number {
        utoipa::Number::Int(int) => int.to_string(),
        utoipa::Number::UInt(uint) => uint.to_string(),
        utoipa::Number::Float(float) if float.fract() == 0.0 && float.abs() < 1e15 => {
            format!("{float:.0}")
        }
        utoipa::Number::Float(float) => float.to_string(),
    }
}

/// utoipa puts a field's description for `Option<Named>` on the reference
/// inside `oneOf: [null, $ref]`, not on the `oneOf` itself.
pub(super) fn from_references(items: &[RefOr<Schema>]) -> Option<&str> {
    items.iter().find_map(|item| match item {
        RefOr::Ref(reference) if !reference.description.is_empty() => {
            Some(reference.description.as_str())
        }
        _ => None,
    })
}

pub(super) fn description_of_schema(schema: &Schema) -> Option<&str> {
    match schema {
        Schema::Object(object) => object.description.as_deref(),
        Schema::Array(array) => array.description.as_deref(),
        Schema::OneOf(one_of) => one_of
            .description
            .as_deref()
            .or_else(|| from_references(&one_of.items)),
        Schema::AnyOf(any_of) => any_of
            .description
            .as_deref()
            .or_else(|| from_references(&any_of.items)),
        Schema::AllOf(all_of) => all_of
            .description
            .as_deref()
            .or_else(|| from_references(&all_of.items)),
        _ => None,
    }
}
