"""authorize_service"""
