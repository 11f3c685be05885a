"""What a user sees: identifiers, errors, messages, options and enumerations (Ergo's ``gen``)."""
