"""Bootstrap data: the first platform administrator (`bootstrap`) and the demo (`demo`)."""
