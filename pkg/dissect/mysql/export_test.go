package mysql

// CommandName exports commandName to the external tests.
var CommandName = commandName
