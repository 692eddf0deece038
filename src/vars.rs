//! Variable precedence: which source wins when the same name is set in several.
