# No tables of its own: roles are Django groups (see staff/roles.py). This module exists
# because Django sends post_migrate only for apps that have one, and the roles are applied then.
