"""Compatibility with other tools' interfaces: Luxonis' blobconverter client (`blobconverter`) and its HTTP
service (`server`), both answered offline by kernelkit's own patch and compile."""
