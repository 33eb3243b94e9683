"""Write the demo corpus of ``xner demo`` (deterministic: same seed, same bytes).

    python -m xner.demo_data.generate [--output-dir DIR] [--seed 13]

Sentences are built from hand-written bilingual templates (English news with its Spanish
translation; Spanish parliamentary debate) whose slots are filled from name lists: people,
organisations, places and "miscellaneous" names (events, prizes, products, nationalities).
Everything here was written for xner; nothing comes from a corpus.

What makes the data useful for testing projection and transfer rather than trivially easy:

* multi-word entities whose words and order differ between the languages ("the European
  Central Bank" -> "el Banco Central Europeo", "the Champions League final" -> "la final de la
  Liga de Campeones", "New York" -> "Nueva York", "the UN" -> "la ONU");
* articles and prepositions around entities that are not part of them, with Spanish
  contractions ("del Banco de España", "al Real Madrid");
* English nationality adjectives tagged MISC (CoNLL-2003 convention) whose Spanish translations
  are lower-case adjectives tagged O (CoNLL-2002 convention): "the Spanish government" -> "el
  Gobierno español";
* one template in five and one name in four never appear in the parallel (training) sentences,
  only in the unlabelled text and the test sets;
* an out-of-domain test set in another register (parliamentary debate: forms of address,
  committees, treaties, surnames after "señor"/"señora").
"""

from __future__ import annotations

import argparse
import os
import random
import re
from dataclasses import dataclass
from typing import Optional, Sequence

SEED = 13
SIZES = {"parallel": 400, "unlabelled": 400, "test": 150, "test_parliament": 150}
HELD_OUT_EVERY = 4  # names at index % 4 == 3 never appear in the parallel sentences
HELD_OUT_TEMPLATE_EVERY = 5  # news templates at index % 5 == 4 neither

# ------------------------------------------------------------------------------------------ names


@dataclass(frozen=True)
class Name:
    """A named entity with its English and Spanish forms.

    ``en_the``: English takes "the" before it (not part of the entity); ``es_art``: the Spanish
    article it takes ("el", "la", "los", "las" or ""). ``es_label`` None: the Spanish form is not
    an entity (a lower-case adjective).
    """

    label: str
    en: str
    es: str
    en_the: bool = False
    es_art: str = ""
    gender: str = "m"

    @property
    def plural(self) -> bool:
        return self.es_art in ("los", "las")


def N(label: str, en: str, es: Optional[str] = None, gender: Optional[str] = None) -> Name:
    """``N("ORG", "the European Central Bank", "el Banco Central Europeo")``: a lower-case leading
    "the" / Spanish article is the article the name takes, not part of it."""
    es = en if es is None else es
    en_the = en.startswith("the ")
    en = en[4:] if en_the else en
    first, _, rest = es.partition(" ")
    es_art = first if first in ("el", "la", "los", "las") and rest else ""
    es = rest if es_art else es
    if gender is None:
        gender = "f" if es_art in ("la", "las") else "m"
    return Name(label, en, es, en_the, es_art, gender)


def names(label: str, text: str) -> list[Name]:
    """One name per line: ``English | Spanish`` (Spanish defaults to the English form)."""
    out = []
    for line in text.strip().splitlines():
        en, _, es = (part.strip() for part in line.partition("|"))
        out.append(N(label, en, es or en))
    return out


POOLS: dict[str, list[Name]] = {
    "inst": names(
        "ORG",
        """
        the European Commission | la Comisión Europea
        the European Parliament | el Parlamento Europeo
        the European Union | la Unión Europea
        the UN | la ONU
        the World Health Organization | la Organización Mundial de la Salud
        the International Monetary Fund | el Fondo Monetario Internacional
        the World Bank | el Banco Mundial
        NATO | la OTAN
        UNESCO | la Unesco
        the Ministry of Health | el Ministerio de Sanidad
        the Ministry of Economy | el Ministerio de Economía
        the Inter-American Development Bank | el Banco Interamericano de Desarrollo
        the Organization of American States | la Organización de Estados Americanos
        the African Union | la Unión Africana
        the Spanish Football Federation | la Federación Española de Fútbol
        the Royal Spanish Academy | la Real Academia Española
        the OECD | la OCDE
        Mercosur | el Mercosur
        the Council of Europe | el Consejo de Europa
        the Ministry of Education | el Ministerio de Educación
        the World Trade Organization | la Organización Mundial del Comercio
        the European Space Agency | la Agencia Espacial Europea
    """,
    ),
    "cbank": names(
        "ORG",
        """
        the European Central Bank | el Banco Central Europeo
        the Bank of Spain | el Banco de España
        the Bank of England | el Banco de Inglaterra
        the Federal Reserve | la Reserva Federal
        the Bank of Mexico | el Banco de México
        the Central Bank of Chile | el Banco Central de Chile
        the Bank of Japan | el Banco de Japón
        the Central Bank of Argentina | el Banco Central de la República Argentina
        the Central Bank of Brazil | el Banco Central de Brasil
        the Bank of Portugal | el Banco de Portugal
    """,
    ),
    "company": names(
        "ORG",
        """
        Telefónica
        Iberdrola
        Repsol
        Inditex
        Mercadona
        Siemens
        Volkswagen
        Google
        Microsoft
        Airbus
        Renault
        Nestlé
        Petrobras
        Vodafone
        Banco Santander | el Banco Santander
        BBVA | el BBVA
        General Motors
        Solaris Group | el Grupo Solaris
        Northern Textile Group | el Grupo Textil del Norte
        Iberian Energy | Energía Ibérica
        Pacific Bank | el Banco del Pacífico
        Andes Mining Company | la Compañía Minera de los Andes
        Atlantic Shipping | Naviera Atlántica
        Costa Verde Foods | Alimentos Costa Verde
        Vega Pharmaceuticals | Laboratorios Vega
        Mediterranean Insurance | Seguros Mediterráneo
        Grupo Bimbo
        Cemex
        Samsung
        Amazon
    """,
    ),
    "airline": names(
        "ORG",
        """
        Iberia
        Air Europa
        Lufthansa
        Avianca
        Aerolíneas Argentinas
        LATAM
        Vueling
        Ryanair
        Aeroméxico
        Air France
    """,
    ),
    "club": names(
        "ORG",
        """
        Real Madrid | el Real Madrid
        FC Barcelona | el FC Barcelona
        Atlético de Madrid | el Atlético de Madrid
        Sevilla FC | el Sevilla FC
        Valencia CF | el Valencia CF
        Real Betis | el Real Betis
        Athletic Bilbao | el Athletic de Bilbao
        Boca Juniors | el Boca Juniors
        River Plate | el River Plate
        Bayern Munich | el Bayern de Múnich
        Manchester United | el Manchester United
        Juventus | la Juventus
        Benfica | el Benfica
        Celta Vigo | el Celta de Vigo
        Real Sociedad | la Real Sociedad
        Villarreal | el Villarreal
    """,
    ),
    "party": names(
        "ORG",
        """
        the Socialist Party | el Partido Socialista
        the People 's Party | el Partido Popular
        the Green Party | el Partido Verde
        the Liberal Party | el Partido Liberal
        the Social Democratic Party | el Partido Socialdemócrata
        the Democratic Union | la Unión Democrática
        National Renewal | Renovación Nacional
        the Christian Democratic Union | la Unión Demócrata Cristiana
        the Broad Front | el Frente Amplio
        the Workers Party | el Partido de los Trabajadores
    """,
    ),
    "media": names(
        "ORG",
        """
        El País
        Reuters
        the BBC | la BBC
        Associated Press
        Le Monde
        The Guardian
        El Mundo
        Clarín
        La Vanguardia
        Bloomberg
        CNN | la CNN
        Spanish Television | Televisión Española
        Radio Nacional de España
        El Tiempo
    """,
    ),
    "univ": names(
        "ORG",
        """
        the University of Salamanca | la Universidad de Salamanca
        the Complutense University of Madrid | la Universidad Complutense de Madrid
        the University of Buenos Aires | la Universidad de Buenos Aires
        the National Autonomous University of Mexico | la Universidad Nacional Autónoma de México
        the University of Oxford | la Universidad de Oxford
        Pompeu Fabra University | la Universidad Pompeu Fabra
        the Polytechnic University of Valencia | la Universidad Politécnica de Valencia
        the University of Chile | la Universidad de Chile
        Harvard University | la Universidad de Harvard
        the University of Granada | la Universidad de Granada
    """,
    ),
    "museum": names(
        "ORG",
        """
        the Prado Museum | el Museo del Prado
        the Reina Sofía Museum | el Museo Reina Sofía
        the Guggenheim Museum | el Museo Guggenheim
        the British Museum | el Museo Británico
        the Louvre | el Louvre
        the Thyssen Museum | el Museo Thyssen
        the National Museum of Anthropology | el Museo Nacional de Antropología
        the Picasso Museum | el Museo Picasso
    """,
    ),
    "court": names(
        "ORG",
        """
        the Supreme Court | el Tribunal Supremo
        the National High Court | la Audiencia Nacional
        the Constitutional Court | el Tribunal Constitucional
        the International Criminal Court | la Corte Penal Internacional
        the European Court of Justice | el Tribunal de Justicia de la Unión Europea
        the High Court of Justice of Andalusia | el Tribunal Superior de Justicia de Andalucía
        the Inter-American Court of Human Rights | la Corte Interamericana de Derechos Humanos
        the Court of Auditors | el Tribunal de Cuentas
    """,
    ),
    "regulator": names(
        "ORG",
        """
        the European Commission | la Comisión Europea
        the CNMC | la CNMC
        the National Markets and Competition Commission | la Comisión Nacional de los Mercados y la Competencia
        the Federal Trade Commission | la Comisión Federal de Comercio
        the Competition and Markets Authority | la Autoridad de Competencia y Mercados
        the Bank of Spain | el Banco de España
    """,
    ),
    "stat": names(
        "ORG",
        """
        the National Statistics Institute | el Instituto Nacional de Estadística
        Eurostat
        the INE | el INE
        the National Institute of Statistics and Geography | el Instituto Nacional de Estadística y Geografía
        the Office for National Statistics | la Oficina Nacional de Estadística
        the National Institute of Statistics and Censuses | el Instituto Nacional de Estadística y Censos
    """,
    ),
    "emerg": names(
        "ORG",
        """
        the Red Cross | la Cruz Roja
        the Civil Guard | la Guardia Civil
        the Military Emergency Unit | la Unidad Militar de Emergencias
        Civil Protection | Protección Civil
        the National Police | la Policía Nacional
    """,
    ),
    "ngo": names(
        "ORG",
        """
        UNICEF | Unicef
        Doctors Without Borders | Médicos Sin Fronteras
        Save the Children
        Oxfam
        Amnesty International | Amnistía Internacional
        the World Food Programme | el Programa Mundial de Alimentos
        Caritas | Cáritas
        Human Rights Watch
        Greenpeace
    """,
    ),
    "union": names(
        "ORG",
        """
        the UGT | la UGT
        CCOO
        the General Confederation of Labour | la Confederación General del Trabajo
        IG Metall
        the CGT | la CGT
        the Federation of Metal Workers | la Federación de Trabajadores del Metal
        the Teachers Union | el Sindicato de Docentes
    """,
    ),
    "weather": names(
        "ORG",
        """
        the State Meteorological Agency | la Agencia Estatal de Meteorología
        AEMET | la AEMET
        the National Meteorological Service | el Servicio Meteorológico Nacional
        Météo-France
        the World Meteorological Organization | la Organización Meteorológica Mundial
    """,
    ),
    "rail": names(
        "ORG",
        """
        Renfe
        Adif
        the SNCF | la SNCF
        Deutsche Bahn
        Eurostar
        Ouigo
        Iryo
    """,
    ),
    "team": names(
        "ORG",
        """
        Movistar Team | el Movistar Team
        UAE Team Emirates | el UAE Team Emirates
        Ineos Grenadiers | el Ineos Grenadiers
        Jumbo-Visma | el Jumbo-Visma
        Soudal Quick-Step | el Soudal Quick-Step
        Caja Rural | el Caja Rural
        Euskaltel-Euskadi | el Euskaltel-Euskadi
    """,
    ),
    "city": names(
        "LOC",
        """
        Madrid
        Barcelona
        Seville | Sevilla
        Valencia
        Bilbao
        Málaga
        Zaragoza
        Granada
        Lisbon | Lisboa
        London | Londres
        Paris | París
        Brussels | Bruselas
        Geneva | Ginebra
        New York | Nueva York
        Buenos Aires
        Mexico City | Ciudad de México
        Bogotá
        Lima
        Santiago
        Rio de Janeiro | Río de Janeiro
        São Paulo
        Berlin | Berlín
        Rome | Roma
        Frankfurt | Fráncfort
        Washington
        Tokyo | Tokio
        Cairo | El Cairo
        Nairobi
        Lagos
        Havana | La Habana
        Quito
        Montevideo
        Caracas
        Santa Cruz de Tenerife
        Las Palmas de Gran Canaria
        Palma
        Córdoba
        Valparaíso
        Guadalajara
        Cartagena de Indias
        Beijing | Pekín
        Moscow | Moscú
        Athens | Atenas
        Warsaw | Varsovia
        Marseille | Marsella
        San Sebastián
    """,
    ),
    "country": names(
        "LOC",
        """
        Spain | España
        France | Francia
        Germany | Alemania
        Italy | Italia
        Portugal
        Mexico | México
        Argentina
        Colombia
        Chile
        Peru | Perú
        Brazil | Brasil
        the United States | Estados Unidos
        the United Kingdom | el Reino Unido
        China
        Japan | Japón
        Morocco | Marruecos
        South Africa | Sudáfrica
        Greece | Grecia
        Poland | Polonia
        Sweden | Suecia
        Canada | Canadá
        Egypt | Egipto
        Kenya | Kenia
        Nigeria
        Ecuador
        Uruguay
        Venezuela
        Cuba
        the Netherlands | los Países Bajos
        the Dominican Republic | la República Dominicana
        Costa Rica
        Ukraine | Ucrania
        Turkey | Turquía
        Algeria | Argelia
        Norway | Noruega
        India | la India
    """,
    ),
    "region": names(
        "LOC",
        """
        the Middle East | Oriente Próximo
        the Sahel | el Sahel
        Latin America | América Latina
        the Balkans | los Balcanes
        Central America | Centroamérica
        the Horn of Africa | el Cuerno de África
        Eastern Europe | Europa del Este
        Southeast Asia | el Sudeste Asiático
        the Caribbean | el Caribe
        the Andes | los Andes
        the Amazon | la Amazonía
        Central Asia | Asia Central
        the Mediterranean | el Mediterráneo
    """,
    ),
    "area": names(
        "LOC",
        """
        Andalusia | Andalucía
        Catalonia | Cataluña
        the Basque Country | el País Vasco
        Galicia
        the Valencian Community | la Comunidad Valenciana
        Murcia
        the Canary Islands | Canarias
        Asturias
        Castile and León | Castilla y León
        Extremadura
        Aragon | Aragón
        Navarre | Navarra
        the Balearic Islands | Baleares
        Patagonia | la Patagonia
        Tierra del Fuego
        Antioquia
        Chiapas
        Yucatán
    """,
    ),
    "stadium": names(
        "LOC",
        """
        the Santiago Bernabéu | el Santiago Bernabéu
        the Camp Nou | el Camp Nou
        Wembley
        La Bombonera
        the Maracanã | el Maracaná
        Mestalla
        Anfield
        the Azteca Stadium | el Estadio Azteca
        the Monumental | el Monumental
    """,
    ),
    "event_win": names(
        "MISC",
        """
        the Tour de France | el Tour de Francia
        the Champions League | la Liga de Campeones
        the World Cup | el Mundial
        the Copa América | la Copa América
        the Nobel Prize in Literature | el Premio Nobel de Literatura
        the Davis Cup | la Copa Davis
        Roland Garros
        the Copa Libertadores | la Copa Libertadores
        the Vuelta a España | la Vuelta a España
        the Europa League | la Liga Europa
        the Princess of Asturias Award | el Premio Princesa de Asturias
        the Cervantes Prize | el Premio Cervantes
    """,
    ),
    "event_held": names(
        "MISC",
        """
        the Mobile World Congress | el Mobile World Congress
        the Olympic Games | los Juegos Olímpicos
        the San Sebastián Film Festival | el Festival de Cine de San Sebastián
        the April Fair | la Feria de Abril
        the Eurovision Song Contest | el Festival de Eurovisión
        the Venice Biennale | la Bienal de Venecia
        the Madrid Book Fair | la Feria del Libro de Madrid
        the Guadalajara International Book Fair | la Feria Internacional del Libro de Guadalajara
        the Pan American Games | los Juegos Panamericanos
        the Cádiz Carnival | el Carnaval de Cádiz
        the Ibero-American Summit | la Cumbre Iberoamericana
    """,
    ),
    "festival": names(
        "MISC",
        """
        the Cannes Film Festival | el Festival de Cannes
        the San Sebastián Film Festival | el Festival de Cine de San Sebastián
        the Berlinale | la Berlinale
        the Málaga Film Festival | el Festival de Málaga
        the Venice Film Festival | el Festival de Venecia
        the Guadalajara Film Festival | el Festival de Cine de Guadalajara
    """,
    ),
    "fair": names(
        "MISC",
        """
        the Madrid Book Fair | la Feria del Libro de Madrid
        the Guadalajara International Book Fair | la Feria Internacional del Libro de Guadalajara
        the Frankfurt Book Fair | la Feria del Libro de Fráncfort
        the Buenos Aires Book Fair | la Feria del Libro de Buenos Aires
        the Bogotá International Book Fair | la Feria Internacional del Libro de Bogotá
    """,
    ),
    "award": names(
        "MISC",
        """
        the Princess of Asturias Award | el Premio Princesa de Asturias
        the Cervantes Prize | el Premio Cervantes
        the Nobel Prize in Chemistry | el Premio Nobel de Química
        the National Research Prize | el Premio Nacional de Investigación
        the Pritzker Prize | el Premio Pritzker
        the Nobel Prize in Medicine | el Premio Nobel de Medicina
    """,
    ),
    "product": names(
        "MISC",
        """
        the PlayStation 5 | la PlayStation 5
        the Galaxy S24 | el Galaxy S24
        the Model Y | el Model Y
        Windows 12
        the A321neo | el A321neo
        the Cupra Born | el Cupra Born
        the Pixel 9 | el Pixel 9
        the Xbox Series X | la Xbox Series X
    """,
    ),
    "race": names(
        "MISC",
        """
        the Tour de France | el Tour de Francia
        the Vuelta a España | la Vuelta a España
        the Tour of Flanders | el Tour de Flandes
        the Giro | el Giro
        Paris-Roubaix | la París-Roubaix
        the Tour of the Basque Country | la Vuelta al País Vasco
        the Tour of Catalonia | la Volta a Cataluña
    """,
    ),
    "tourn": names(
        "MISC",
        """
        Roland Garros
        Wimbledon
        the US Open | el Abierto de Estados Unidos
        the Australian Open | el Abierto de Australia
        the Madrid Open | el Masters de Madrid
        the Davis Cup | la Copa Davis
        the Godó Tournament | el Torneo Godó
    """,
    ),
    "cup": names(
        "MISC",
        """
        the Champions League | la Liga de Campeones
        the Copa del Rey | la Copa del Rey
        the Europa League | la Liga Europa
        the Copa Libertadores | la Copa Libertadores
        the World Cup | el Mundial
        the Club World Cup | el Mundial de Clubes
        the Spanish Super Cup | la Supercopa de España
    """,
    ),
    # Parliamentary debate (out-of-domain test set): Spanish only.
    "porg": names(
        "ORG",
        """
        la Comisión
        el Consejo
        la Comisión Europea
        el Consejo Europeo
        el Tribunal de Cuentas
        el Banco Europeo de Inversiones
        la Agencia Europea de Medio Ambiente
        el Consejo de Europa
        la Organización Mundial del Comercio
        la OTAN
        Frontex
        el Defensor del Pueblo Europeo
        Europol
        la Oficina Europea de Lucha contra el Fraude
        el Banco Central Europeo
    """,
    ),
    "pgroup": names(
        "ORG",
        """
        el Grupo del Partido Popular Europeo
        el Grupo Socialista
        el Grupo de los Verdes/Alianza Libre Europea
        el Grupo de la Alianza de los Liberales y Demócratas por Europa
        el Grupo Confederal de la Izquierda Unitaria Europea
        el Grupo de los Conservadores y Reformistas Europeos
        el Grupo Unión por la Europa de las Naciones
    """,
    ),
    "pcomm": names(
        "ORG",
        """
        la Comisión de Presupuestos
        la Comisión de Asuntos Exteriores
        la Comisión de Agricultura y Desarrollo Rural
        la Comisión de Pesca
        la Comisión de Transportes y Turismo
        la Comisión de Industria , Investigación y Energía
        la Comisión de Libertades Civiles , Justicia y Asuntos de Interior
        la Comisión de Medio Ambiente , Salud Pública y Seguridad Alimentaria
        la Comisión de Desarrollo Regional
        la Comisión de Peticiones
    """,
    ),
    "pfund": names(
        "ORG",
        """
        el Fondo de Solidaridad
        el Fondo Social Europeo
        el Fondo Europeo de Desarrollo Regional
        el Fondo de Cohesión
        el Fondo Europeo Agrícola de Garantía
    """,
    ),
    "pmisc": names(
        "MISC",
        """
        el Tratado de Lisboa
        el Tratado de Niza
        la Estrategia de Lisboa
        el Pacto de Estabilidad y Crecimiento
        la Carta de los Derechos Fundamentales
        la Agenda 2030
        la Política Agrícola Común
        el Protocolo de Kioto
        el Acuerdo de París
        la Directiva Marco del Agua
        el Reglamento de Dublín
        el Pacto Verde Europeo
        el Acuerdo de Schengen
    """,
    ),
    "ppolicy": names(
        "MISC",
        """
        la Política Agrícola Común
        la Política Pesquera Común
        el Pacto Verde Europeo
        la Directiva Marco del Agua
        el Reglamento de Pesca
    """,
    ),
    "pprog": names(
        "MISC",
        """
        Erasmus
        Horizonte 2020
        LIFE
        Leader
        Sócrates
        Galileo
        Copernicus
    """,
    ),
    "ploc": names(
        "LOC",
        """
        Irlanda
        Grecia
        Chipre
        Malta
        Ucrania
        Turquía
        Kosovo
        los Balcanes Occidentales
        el Sáhara Occidental
        Bielorrusia
        Georgia
        Moldavia
        Darfur
        Gaza
        Oriente Próximo
        Lampedusa
        Rumanía
        Bulgaria
        Hungría
        Polonia
        Lituania
        Eslovaquia
        Croacia
        Albania
        Birmania
        Zimbabue
        Galicia
        Andalucía
        Portugal
        España
        Francia
        Italia
    """,
    ),
    "pcity": names(
        "LOC",
        """
        Estrasburgo
        Bruselas
        Luxemburgo
        Lisboa
        Copenhague
        Tampere
        Salónica
    """,
    ),
}
# Generic slots: any name of these pools.
POOLS["org"] = POOLS["inst"] + POOLS["company"] + POOLS["party"] + POOLS["ngo"] + POOLS["union"]
POOLS["loc"] = POOLS["city"] + POOLS["country"]

NATIONALITIES = [
    # English adjective (MISC in English), Spanish masc. sg, fem. sg, masc. pl, fem. pl (O in Spanish)
    ("Spanish", "español española españoles españolas"),
    ("French", "francés francesa franceses francesas"),
    ("German", "alemán alemana alemanes alemanas"),
    ("Mexican", "mexicano mexicana mexicanos mexicanas"),
    ("Argentine", "argentino argentina argentinos argentinas"),
    ("Colombian", "colombiano colombiana colombianos colombianas"),
    ("Chilean", "chileno chilena chilenos chilenas"),
    ("Brazilian", "brasileño brasileña brasileños brasileñas"),
    ("Italian", "italiano italiana italianos italianas"),
    ("British", "británico británica británicos británicas"),
    ("American", "estadounidense estadounidense estadounidenses estadounidenses"),
    ("Portuguese", "portugués portuguesa portugueses portuguesas"),
    ("Moroccan", "marroquí marroquí marroquíes marroquíes"),
    ("Peruvian", "peruano peruana peruanos peruanas"),
    ("Japanese", "japonés japonesa japoneses japonesas"),
    ("Canadian", "canadiense canadiense canadienses canadienses"),
    ("Swedish", "sueco sueca suecos suecas"),
    ("Dutch", "neerlandés neerlandesa neerlandeses neerlandesas"),
    ("Greek", "griego griega griegos griegas"),
    ("Polish", "polaco polaca polacos polacas"),
    ("Cuban", "cubano cubana cubanos cubanas"),
    ("Uruguayan", "uruguayo uruguaya uruguayos uruguayas"),
]
NAT_FORMS = ("ms", "fs", "mp", "fp")

FEMALE = """María José, Ana, Lucía, Carmen, Isabel, Elena, Laura, Marta, Sofía, Paula, Beatriz, Rosa María,
Claire, Anna, Sarah, Fátima, Amina, Ingrid, Julia, Teresa, Pilar, Valentina, Camila, Gabriela, Ximena,
Nuria, Montserrat, Aitana, Chiara, Olga"""
MALE = """Carlos, Javier, Miguel Ángel, José Luis, Antonio, Pedro, Jorge, Andrés, Diego, Luis, Pablo,
Fernando, Juan Carlos, Rafael, Thomas, Peter, David, Ahmed, Kofi, Lars, Marco, Mateo, Santiago, Raúl,
Iñaki, Sergio, Alejandro, Emilio, Hugo, Jean-Pierre"""
SURNAMES = """Pérez, García, Torres, Gutiérrez, Ramírez, Morales, Castillo, Herrera, Navarro, Romero, Vidal,
Ortega, Delgado, Fuentes, Iglesias, Molina, Serrano, Blanco, Medina, Cabrera, Schmidt, Dubois, Rossi,
Johnson, Okafor, Lindqvist, Müller, Kowalski, Nakamura, Mensah, de la Fuente, Sánchez, Domínguez, Ruiz,
Aguirre, Echeverría, Villalobos, Zapata, Ibarra, Quiroga, Salinas, Benítez, Carrasco, Figueroa, Lozano,
Martín, Vargas, Bermúdez, Peña, Rojas"""


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", " ").split(",") if item.strip()]


FIRST_NAMES = {"f": _list(FEMALE), "m": _list(MALE)}
LAST_NAMES = _list(SURNAMES)

DAYS = [
    ("Monday", "lunes"),
    ("Tuesday", "martes"),
    ("Wednesday", "miércoles"),
    ("Thursday", "jueves"),
    ("Friday", "viernes"),
    ("Saturday", "sábado"),
    ("Sunday", "domingo"),
]
MONTHS = [
    ("January", "enero"),
    ("February", "febrero"),
    ("March", "marzo"),
    ("April", "abril"),
    ("May", "mayo"),
    ("June", "junio"),
    ("July", "julio"),
    ("August", "agosto"),
    ("September", "septiembre"),
    ("October", "octubre"),
    ("November", "noviembre"),
    ("December", "diciembre"),
]

# ------------------------------------------------------------------------------------------ templates
# Tokens are separated by single spaces. {kindN[:form]} is a slot (the same slot in both languages);
# [slotN:masculine|feminine] agrees with a slot's gender, [slotN~singular|plural] with its number;
# "_" joins words inside a choice. Spanish forms: :de / :a (with the article, contracted: "del", "al"),
# :bare (no article); persons: :last (surname only); nationalities: :ms :fs :mp :fp, or :s@p1 (singular,
# agreeing with the gender of slot p1).

NEWS = [
    (
        "{p1} , the chief executive of {company1} , said on {day1} that the group will open a new office in {city1} .",
        "{p1} , [p1:consejero_delegado|consejera_delegada] {company1:de} , afirmó el {day1} que el grupo abrirá una nueva oficina en {city1} .",
    ),
    (
        "Shares of {company1} rose {pct1} percent on {day1} after the company reported record profits in {country1} .",
        "Las acciones {company1:de} subieron un {pct1} por ciento el {day1} después de que la compañía anunciara beneficios récord en {country1} .",
    ),
    (
        "The {nat1} government approved new measures against inflation on {day1} .",
        "El Gobierno {nat1:ms} aprobó el {day1} nuevas medidas contra la inflación .",
    ),
    (
        "{p1} will travel to {city1} next week to meet representatives of {inst1} .",
        "{p1} viajará la próxima semana a {city1} para reunirse con representantes {inst1:de} .",
    ),
    (
        "{cbank1} kept interest rates unchanged at its meeting in {city1} on {day1} .",
        "{cbank1} mantuvo los tipos de interés sin cambios en su reunión del {day1} en {city1} .",
    ),
    (
        "According to {media1} , {p1} has resigned as president of {club1} .",
        "Según {media1} , {p1} ha dimitido como [p1:presidente|presidenta] {club1:de} .",
    ),
    (
        "{club1} beat {club2} {score1} in {city1} on {day1} and moved to the top of the table .",
        "{club1} venció {club2:a} por {score1} el {day1} en {city1} y se colocó líder de la clasificación .",
    ),
    (
        "{event_held1} will take place in {city1} in {month1} {year1} .",
        "{event_held1} [event_held1~se_celebrará|se_celebrarán] en {city1} en {month1} de {year1} .",
    ),
    (
        "{p1} , who was born in {city1} , won {event_win1} in {year1} .",
        "{p1} , [p1:nacido|nacida] en {city1} , ganó {event_win1} en {year1} .",
    ),
    (
        "Police arrested two men in {city1} on {day1} in connection with a fraud against {company1} .",
        "La policía detuvo el {day1} en {city1} a dos hombres en relación con un fraude contra {company1} .",
    ),
    (
        "{p1} , the {nat1} foreign minister , met {p2} in {city1} on {day1} to discuss the crisis in {region1} .",
        "[p1:El_ministro|La_ministra] de Asuntos Exteriores {nat1:s@p1} , {p1} , se reunió el {day1} en {city1} con {p2} para analizar la crisis en {region1} .",
    ),
    (
        "{company1} plans to invest {money1} million euros in a new plant near {city1} , the company said in a statement .",
        "{company1} prevé invertir {money1} millones de euros en una nueva planta cerca de {city1} , según informó la empresa en un comunicado .",
    ),
    (
        "{inst1} warned on {day1} that the economy of {country1} could slow down this year .",
        "{inst1} advirtió el {day1} de que la economía {country1:de} podría desacelerarse este año .",
    ),
    (
        "{p1} , a [p1:spokesman|spokeswoman] for {party1} , criticised the decision of {court1} .",
        "{p1} , portavoz {party1:de} , criticó la decisión {court1:de} .",
    ),
    (
        "Thousands of people marched through the streets of {city1} on {day1} to protest against the closure of the {company1:bare} factory .",
        "Miles de personas se manifestaron el {day1} por las calles de {city1} para protestar contra el cierre de la fábrica {company1:de} .",
    ),
    (
        "{p1} scored twice as {club1} won {score1} against {club2} at {stadium1} .",
        "{p1} marcó dos goles en la victoria {club1:de} por {score1} ante {club2} en {stadium1} .",
    ),
    (
        "An exhibition on {p1} at {museum1} in {city1} has attracted more than {thousands1} visitors .",
        "Una exposición sobre {p1} en {museum1} de {city1} ha atraído a más de {thousands1} visitantes .",
    ),
    (
        "{p1} has been appointed the new coach of {club1} , the club announced on {day1} .",
        "{p1} ha sido [p1:nombrado_nuevo_entrenador|nombrada_nueva_entrenadora] {club1:de} , según anunció el club el {day1} .",
    ),
    (
        "The airline {airline1} will cancel {num1} flights to {city1} on {day1} because of a pilots strike .",
        "La aerolínea {airline1} cancelará el {day1} {num1} vuelos a {city1} por una huelga de pilotos .",
    ),
    (
        "{p1} , a professor at {univ1} , will receive {award1} in {city1} next month .",
        "{p1} , [p1:catedrático|catedrática] {univ1:de} , recibirá el próximo mes {award1} en {city1} .",
    ),
    (
        "{country1} and {country2} signed a trade agreement in {city1} on {day1} .",
        "{country1} y {country2} firmaron el {day1} en {city1} un acuerdo comercial .",
    ),
    (
        "{company1} has agreed to buy its rival {company2} for {money1} million euros , sources close to the deal told {media1} .",
        "{company1} ha acordado comprar a su rival {company2} por {money1} millones de euros , según fuentes cercanas a la operación citadas por {media1} .",
    ),
    (
        "{p1} , the leader of {party1} , called for early elections in {country1} .",
        "{p1} , [p1:líder|líder] {party1:de} , pidió elecciones anticipadas en {country1} .",
    ),
    (
        "Heavy rain caused flooding in {area1} and forced the closure of several roads near {city1} .",
        "Las fuertes lluvias provocaron inundaciones en {area1} y obligaron a cerrar varias carreteras cerca de {city1} .",
    ),
    (
        "{company1} said on {day1} that it would cut {big1} jobs in {country1} .",
        "{company1} anunció el {day1} que recortará {big1} empleos en {country1} .",
    ),
    (
        "The {cup1:bare} final between {club1} and {club2} will be played at {stadium1} .",
        "La final {cup1:de} entre {club1} y {club2} se jugará en {stadium1} .",
    ),
    (
        "{p1} told reporters in {city1} that {org1} would support the plan .",
        "{p1} dijo a los periodistas en {city1} que {org1} apoyaría el plan .",
    ),
    (
        "The mayor of {city1} , {p1} , opened the new metro line on {day1} .",
        "[p1:El_alcalde|La_alcaldesa] de {city1} , {p1} , inauguró el {day1} la nueva línea de metro .",
    ),
    (
        "{regulator1} has opened an investigation into {company1} for alleged breaches of competition rules .",
        "{regulator1} ha abierto una investigación a {company1} por un supuesto incumplimiento de las normas de competencia .",
    ),
    (
        "{product1} will go on sale in {country1} in {month1} , the company announced .",
        "{product1} saldrá a la venta en {country1} en {month1} , anunció la compañía .",
    ),
    (
        "Inflation in {country1} fell to {pct1} percent in {month1} , according to {stat1} .",
        "La inflación en {country1} bajó al {pct1} por ciento en {month1} , según {stat1} .",
    ),
    (
        "The trial of former minister {p1} began on {day1} at {court1} in {city1} .",
        "El juicio contra [p1:el_exministro|la_exministra] {p1} comenzó el {day1} en {court1} , en {city1} .",
    ),
    (
        "{p1} , the {nat1} writer , presented [p1:his|her] latest novel at {fair1} .",
        "[p1:El_escritor|La_escritora] {nat1:s@p1} {p1} presentó su última novela en {fair1} .",
    ),
    (
        "{org1} has called an emergency meeting in {city1} after the attack in {city2} .",
        "{org1} ha convocado una reunión de urgencia en {city1} tras el atentado de {city2} .",
    ),
    (
        "More than {num1} people were evacuated from their homes in {area1} because of a forest fire , {emerg1} said .",
        "Más de {num1} personas fueron evacuadas de sus casas en {area1} por un incendio forestal , según informó {emerg1} .",
    ),
    (
        "{p1} ( {team1:bare} ) won the stage of {race1} on {day1} ahead of {p2} .",
        "{p1} ( {team1:bare} ) ganó el {day1} la etapa {race1:de} por delante de {p2} .",
    ),
    (
        "{company1} will build a data centre in {city1} with an investment of {money1} million dollars .",
        "{company1} construirá un centro de datos en {city1} con una inversión de {money1} millones de dólares .",
    ),
    (
        "The {nat1} Prime Minister , {p1} , arrived in {city1} on {day1} for a two-day official visit .",
        "[p1:El_primer_ministro|La_primera_ministra] {nat1:s@p1} , {p1} , llegó el {day1} a {city1} para una visita oficial de dos días .",
    ),
    (
        "{p1} said in an interview with {media1} that {country1} must reduce its dependence on gas from {country2} .",
        "{p1} afirmó en una entrevista con {media1} que {country1} [country1~debe|deben] reducir su dependencia del gas {country2:de} .",
    ),
    (
        "Firefighters are still fighting a fire that broke out on {day1} in a warehouse of {company1} in {city1} .",
        "Los bomberos siguen luchando contra un incendio declarado el {day1} en un almacén {company1:de} en {city1} .",
    ),
    (
        "{ngo1} warned that millions of children in {region1} are at risk of hunger .",
        "{ngo1} advirtió de que millones de niños en {region1} corren riesgo de pasar hambre .",
    ),
    (
        "The agreement between {org1} and {org2} was signed in {city1} in the presence of {p1} .",
        "El acuerdo entre {org1} y {org2} se firmó en {city1} en presencia de {p1} .",
    ),
    (
        "{p1} , the {nat1} tennis player , reached the final of {tourn1} after beating {p2} .",
        "[p1:El_tenista|La_tenista] {nat1:s@p1} {p1} alcanzó la final {tourn1:de} tras vencer a {p2} .",
    ),
    (
        "Temperatures in {city1} reached {num1} degrees on {day1} , the highest figure since {year1} , according to {weather1} .",
        "Las temperaturas en {city1} alcanzaron los {num1} grados el {day1} , la cifra más alta desde {year1} , según {weather1} .",
    ),
    (
        "{p1} will present [p1:his|her] new film at {festival1} in {month1} .",
        "{p1} presentará su nueva película en {festival1} en {month1} .",
    ),
    (
        "{inst1} approved an aid package of {money1} million euros for farmers in {area1} .",
        "{inst1} aprobó un paquete de ayudas de {money1} millones de euros para los agricultores de {area1} .",
    ),
    ("Why did {company1} decide to leave {country1} ?", "¿ Por qué decidió {company1} abandonar {country1} ?"),
    (
        '" We will not accept these conditions , " said {p1} , the leader of {union1} .',
        "« No aceptaremos estas condiciones » , afirmó {p1} , [p1:líder|líder] {union1:de} .",
    ),
    (
        "{p1} ( {city1} , {year1} ) is one of the most influential architects in {country1} .",
        "{p1} ( {city1} , {year1} ) es [p1:uno|una] de los arquitectos más influyentes {country1:de} .",
    ),
    (
        "The new high-speed line between {city1} and {city2} will cut the journey to less than two hours , {rail1} said .",
        "La nueva línea de alta velocidad entre {city1} y {city2} reducirá el trayecto a menos de dos horas , según {rail1} .",
    ),
    (
        "On {day1} , {p1} visited the {nat1} troops deployed in {country1} .",
        "El {day1} , {p1} visitó a las tropas {nat1:fp} desplegadas en {country1} .",
    ),
    (
        "{company1} , which is based in {city1} , has {thousands1} employees in {num1} countries .",
        "{company1} , con sede en {city1} , tiene {thousands1} empleados en {num1} países .",
    ),
    (
        "{p1} , the new ambassador of {country1} to {country2} , presented [p1:his|her] credentials on {day1} .",
        "{p1} , [p1:nuevo_embajador|nueva_embajadora] {country1:de} en {country2} , presentó el {day1} sus cartas credenciales .",
    ),
    (
        "The {nat1} striker {p1} has signed a four-year contract with {club1} .",
        "[p1:El_delantero|La_delantera] {nat1:s@p1} {p1} ha firmado un contrato de cuatro años con {club1} .",
    ),
    (
        "{p1} and {p2} , researchers at {univ1} , have developed a new test for the disease .",
        "{p1} y {p2} , investigadores {univ1:de} , han desarrollado una nueva prueba para la enfermedad .",
    ),
    (
        "Exports from {country1} to {region1} grew by {pct1} percent last year , {stat1} reported on {day1} .",
        "Las exportaciones {country1:de} a {region1} crecieron un {pct1} por ciento el año pasado , informó el {day1} {stat1} .",
    ),
]

PARLIAMENT = [
    "Señor Presidente , quisiera dar las gracias [p1:al_ponente|a_la_ponente] , [p1:el_señor|la_señora] {p1:last} , por su excelente informe .",
    "Señor Presidente , Señorías , {porg1} debe presentar cuanto antes una propuesta legislativa sobre este asunto .",
    "En nombre {pgroup1:de} , quiero expresar nuestra preocupación por la situación de los derechos humanos en {ploc1} .",
    "Señora Presidenta , la situación en {ploc1} exige una respuesta firme por parte {porg1:de} .",
    "{pmisc1} establece claramente que los Estados miembros deben cooperar en este ámbito .",
    "Como ha dicho [p1:el_señor|la_señora] {p1:last} , no podemos aceptar que {porg1} ignore la voluntad de esta Cámara .",
    "Mi grupo votará a favor del informe , pero lamentamos que {porg1} no haya tenido en cuenta las enmiendas presentadas por {pgroup1} .",
    "[p1:El_comisario|La_comisaria] {p1} ha prometido que {porg1} presentará un plan de acción antes de {month1} .",
    "Señor Presidente , los ciudadanos de {ploc1} esperan de nosotros algo más que declaraciones .",
    "La ampliación hacia {ploc1} y {ploc2} no debe poner en peligro {pmisc1} .",
    "Quisiera recordar {porg1:a} que {pmisc1} entró en vigor hace ya varios años .",
    "Señorías , el debate sobre {ploc1} continuará mañana en {pcity1} .",
    "Según los datos {porg1:de} , el desempleo juvenil en {ploc1} supera ya el {pct1} por ciento .",
    "Apoyo plenamente la propuesta [p1:del_señor|de_la_señora] {p1:last} de crear un fondo especial para las regiones afectadas de {ploc1} .",
    "No es aceptable que los pescadores de {ploc1} paguen las consecuencias de un acuerdo negociado por {porg1} con {ploc2} .",
    "La reforma de {ppolicy1} no puede hacerse a espaldas de los productores de {ploc1} .",
    "Quiero felicitar {pgroup1:a} por su trabajo en {pcomm1} .",
    "El informe [p1:del_señor|de_la_señora] {p1:last} , aprobado por {pcomm1} , merece el apoyo de esta Cámara .",
    "Señor Presidente , hace {num1} años que {ploc1} espera una solución justa al conflicto .",
    "Quisiera preguntar [p1:al_señor_comisario|a_la_señora_comisaria] {p1:last} si {porg1} piensa revisar {pmisc1} .",
    "Tras las inundaciones en {ploc1} , {porg1} movilizó {money1} millones de euros {pfund1:de} .",
    "El Gobierno de {ploc1} debe liberar inmediatamente a {p1} , [p1:detenido|detenida] desde {month1} sin cargos .",
    "Señora Presidenta , el programa {pprog1} es uno de los mayores éxitos de nuestra política educativa .",
    "Mi pregunta se dirige {porg1:a} : ¿ cuándo piensa aplicar {pmisc1} en {ploc1} ?",
    "Señor Presidente , en la reunión de {pcity1} los jefes de Gobierno se comprometieron a reforzar {pmisc1} .",
    "[p1:El_señor|La_señora] {p1:last} tiene la palabra en nombre {pgroup1:de} .",
    "Lamento que {porg1} y {porg2} no hayan alcanzado un acuerdo sobre el presupuesto de {year1} .",
    "Los agricultores de {ploc1} no entienden por qué {ppolicy1} les trata peor que a los de {ploc2} .",
    "Quisiera dar la bienvenida a la delegación de {ploc1} , que sigue este debate desde la tribuna .",
]

# --------------------------------------------------------------------------------------- rendering

SLOT = re.compile(r"^\{([a-z_]+?)(\d)(?::([a-z@0-9]+))?\}$")
CHOICE = re.compile(r"^\[([a-z_]+?\d)([:~])(.+)\]$")
VALUE_KINDS = ("day", "month", "year", "num", "pct", "money", "big", "thousands", "score")


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    gender: str

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class Nationality:
    en: str
    es: tuple


def _article_tokens(art: str, prep: str) -> list[str]:
    if prep == "de":
        return ["del"] if art == "el" else ["de"] + ([art] if art else [])
    if prep == "a":
        return ["al"] if art == "el" else ["a"] + ([art] if art else [])
    return [art] if art else []


def _tag(tokens: Sequence[str], label: Optional[str]) -> list[tuple[str, str]]:
    if label is None:
        return [(t, "O") for t in tokens]
    return [(t, ("B-" if k == 0 else "I-") + label) for k, t in enumerate(tokens)]


class Filler:
    """Draws slot values for one sentence (distinct values for distinct slots of the same kind)."""

    def __init__(self, rng: random.Random, held_out: bool):
        self.rng = rng
        self.held_out = held_out  # whether names held out of the parallel sentences may be drawn
        self.values: dict[str, object] = {}

    def _pick(self, items: Sequence, taken: list) -> object:
        allowed = [x for k, x in enumerate(items) if self.held_out or k % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
        for _ in range(100):
            choice = self.rng.choice(allowed)
            if choice not in taken:
                return choice
        raise RuntimeError("not enough distinct values for a template")

    def value(self, kind: str, index: str) -> object:
        key = kind + index
        if key in self.values:
            return self.values[key]
        taken = [v for k, v in self.values.items() if re.sub(r"\d$", "", k) == kind]
        rng = self.rng
        if kind == "p":
            gender = rng.choice(["f", "m"])
            first = self._pick(FIRST_NAMES[gender], [])
            last = self._pick(LAST_NAMES, [])
            shape = rng.random()
            if shape < 0.2:
                last = f"{last} {self._pick(LAST_NAMES, [last])}"  # two surnames, Spanish style
            elif shape < 0.3:
                first = first[0] + "."  # an initial
            value = Person(first, last, gender)
            if any(isinstance(v, Person) and v.last == value.last for v in taken):
                return self.value(kind, index)
        elif kind == "nat":
            en, es = self._pick(NATIONALITIES, [(v.en, v.es) for v in taken])
            value = Nationality(en, tuple(es.split()))
        elif kind == "day":
            value = rng.choice(DAYS)
        elif kind == "month":
            value = rng.choice(MONTHS)
        elif kind == "year":
            year = str(rng.randint(2015, 2023))
            value = (year, year)
        elif kind == "num":
            n = str(rng.randint(3, 60))
            value = (n, n)
        elif kind == "pct":
            a, b = rng.randint(1, 12), rng.randint(1, 9)
            value = (f"{a}.{b}", f"{a},{b}")
        elif kind == "money":
            n = str(rng.choice([rng.randint(2, 95), 5 * rng.randint(20, 190)]))
            value = (n, n)
        elif kind == "big":
            n = 50 * rng.randint(3, 96)
            value = (f"{n // 1000},{n % 1000:03d}" if n >= 1000 else str(n), str(n))
        elif kind == "thousands":
            n = rng.randint(12, 95)
            value = (f"{n},000", f"{n}.000")
        elif kind == "score":
            a = rng.randint(1, 5)
            value = (f"{a}-{rng.randint(0, a - 1)}",) * 2
        else:
            value = self._pick(POOLS[kind], taken)
        self.values[key] = value
        return value


def _gender(value: object) -> str:
    return value.gender if isinstance(value, (Person, Name)) else "m"


def _is_plural(value: object) -> bool:
    return isinstance(value, Name) and value.plural


def render(template: str, lang: str, filler: Filler) -> list[tuple[str, str]]:
    """The (token, tag) pairs of one side of a template."""
    out: list[tuple[str, str]] = []
    for token in template.split(" "):
        slot = SLOT.match(token)
        choice = CHOICE.match(token)
        if slot:
            kind, index, form = slot.group(1), slot.group(2), slot.group(3) or ""
            out += _render_slot(filler.value(kind, index), kind, lang, form, filler)
        elif choice:
            key, mode, options = choice.groups()
            kind, index = key[:-1], key[-1]
            value = filler.value(kind, index)
            options = options.split("|")
            pick = _is_plural(value) if mode == "~" else _gender(value) == "f"
            out += _tag(options[int(pick)].replace("_", " ").split(), None)
        else:
            out.append((token, "O"))
    first, tag = out[0]
    if first[:1].islower():
        out[0] = (first[0].upper() + first[1:], tag)
    return out


def _render_slot(value: object, kind: str, lang: str, form: str, filler: Filler) -> list[tuple[str, str]]:
    if isinstance(value, Person):
        return _tag((value.last if form == "last" else value.full).split(), "PER")
    if isinstance(value, Nationality):
        if lang == "en":
            return _tag([value.en], "MISC")
        if "@" in form:
            number, other = form.split("@")
            form = ("f" if _gender(filler.value(other[:-1], other[-1])) == "f" else "m") + number
        return _tag([value.es[NAT_FORMS.index(form)]], None)
    if isinstance(value, Name):
        if lang == "en":
            article = ["the"] if value.en_the and form != "bare" else []
            return _tag(article, None) + _tag(value.en.split(), value.label)
        article = [] if form == "bare" else _article_tokens(value.es_art, form)
        return _tag(article, None) + _tag(value.es.split(), value.label)
    return _tag([value[0] if lang == "en" else value[1]], None)  # a (en, es) value


# --------------------------------------------------------------------------------------- corpus


def _check_tokens(pairs: list[tuple[str, str]], lang: str) -> str:
    """The sentence's text; an error if word splitting would not give back its tokens."""
    from projection.detokenize import detokenize
    from projection.word_split import split_words

    tokens = [t for t, _ in pairs]
    text = detokenize(tokens)
    if split_words(text, lang) != tokens:
        raise AssertionError(f"tokenisation mismatch ({lang}): {tokens} -> {split_words(text, lang)}")
    return text


def generate(seed: int = SEED, sizes: Optional[dict] = None) -> dict[str, list]:
    """``{"parallel": [(en_pairs, es_pairs)], "unlabelled": [es_pairs], "test": [...], "test_parliament": [...]}``."""
    sizes = {**SIZES, **(sizes or {})}
    seen: set = set()
    out: dict[str, list] = {}
    train_templates = [t for k, t in enumerate(NEWS) if k % HELD_OUT_TEMPLATE_EVERY != HELD_OUT_TEMPLATE_EVERY - 1]
    plan = [
        ("parallel", train_templates, False, 1),
        ("unlabelled", NEWS, True, 2),
        ("test", NEWS, True, 3),
        ("test_parliament", PARLIAMENT, True, 4),
    ]
    for name, templates, held_out, stream in plan:
        rng = random.Random(seed * 100 + stream)
        rows: list = []
        order: list = []
        while len(rows) < sizes[name]:
            if not order:  # every template once per round, in a fresh random order
                order = list(range(len(templates)))
                rng.shuffle(order)
            template = templates[order.pop()]
            filler = Filler(rng, held_out)
            if name == "test_parliament":
                es = render(template, "es", filler)
                row = es
            else:
                en_template, es_template = template
                en = render(en_template, "en", filler)
                es = render(es_template, "es", filler)
                row = (en, es) if name == "parallel" else es
            key = tuple(t for t, _ in es)
            if key in seen:
                continue
            seen.add(key)
            if name == "parallel":
                _check_tokens(en, "en")
            _check_tokens(es, "es")
            rows.append(row)
        out[name] = rows
    return out


def conll(sentences: Sequence[list[tuple[str, str]]]) -> str:
    return "".join("".join(f"{token} {tag}\n" for token, tag in pairs) + "\n" for pairs in sentences)


def write(output_dir: str, seed: int = SEED, sizes: Optional[dict] = None) -> dict[str, str]:
    """Write the demo files into ``output_dir``; returns key -> path."""
    from projection.detokenize import detokenize
    from xner.demo_data import FILES

    data = generate(seed, sizes)
    texts = {
        "en-train": conll([en for en, _ in data["parallel"]]),
        "es-train": conll([es for _, es in data["parallel"]]),
        "es-unlabelled": "".join(detokenize([t for t, _ in es]) + "\n" for es in data["unlabelled"]),
        "es-test": conll(data["test"]),
        "es-test-parliament": conll(data["test_parliament"]),
    }
    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    for key, text in texts.items():
        path = os.path.join(output_dir, FILES[key])
        partial = path + ".partial"
        with open(partial, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(partial, path)
        paths[key] = path
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    from xner.demo_data import DATA_DIR

    parser = argparse.ArgumentParser(prog="python -m xner.demo_data.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=DATA_DIR, help="where to write the files (default: the package's)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    for key, path in write(args.output_dir, args.seed).items():
        print(f"{key}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
