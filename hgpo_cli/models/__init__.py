"""Model resolution and loading: HF ids, local folders, and the embedded models the project builds itself."""
