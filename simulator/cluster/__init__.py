"""Starting Ray for fleetsim: its workers must import this fleetsim, whatever folder the user is in."""
