"""Downloading a file through a test client, whether the view streams it or not."""


def download(client, url: str):
    """GET `url`; returns the response and its whole body."""
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body
