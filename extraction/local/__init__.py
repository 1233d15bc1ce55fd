"""The offline engine: label/value matching over the document's lines (see `engine`)."""
