"""registration_service"""
