"""The one exception type for a user mistake: the CLI turns it into exit status 2, the GUI into a dialog."""


class UserError(Exception):
    """Bad input from the user (a wrong path, a broken bundle, a missing model): one clear message."""


class Cancelled(Exception):
    """Work stopped on purpose (the window closed, another bundle was opened): not an error to show."""
