"""Image-edit providers: OpenAI's `POST /v1/images/edits` and the same body on Azure OpenAI."""
