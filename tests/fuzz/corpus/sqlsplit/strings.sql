SELECT 'it''s; fine', E'back\\slash \' quote;', e'x\'y', U&'d\0061t\+000061';
SELECT 'a' 'b';
