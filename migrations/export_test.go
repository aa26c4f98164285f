package migrations

// NewProvider gives the tests the goose provider Apply uses, to take a
// schema down and up again.
var NewProvider = newProvider
