"""Example documents that Sheaf makes itself, with the truth about each (see `samples.invoices`)."""
