"""The supervisor: desired state from git against the world -> proposed actions."""
