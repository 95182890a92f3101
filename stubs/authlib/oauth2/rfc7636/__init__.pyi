from .challenge import CodeChallenge as CodeChallenge
from .challenge import create_s256_code_challenge as create_s256_code_challenge
