def build_dashboard() -> dict:
    return {}
